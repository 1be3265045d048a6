/**
 * The page's wiring (plain browser JavaScript, inlined by html.ts after rules.ts's functions):
 * the "Verify signatures" button runs verifyReceipt / verifyCheckpoint over the model embedded in
 * the page and writes each row's verdict with textContent (never markup). `?engine=noble` forces
 * the @noble/ed25519 engine, `?engine=webcrypto` refuses to fall back; otherwise WebCrypto's
 * Ed25519 is used where the browser has it (it must pass RFC 8032's test vector), noble elsewhere.
 * Results are also left in data attributes (data-status on rows; data-verified, data-failed and
 * data-engine on the summary) for tests and for anyone scripting the check.
 */
export const PAGE_UI = String.raw`
function startPage(noble) {
  var model = JSON.parse(document.getElementById('model').textContent);
  var button = document.getElementById('verify');
  var summary = document.getElementById('verify-summary');

  function mark(id, verdict) {
    var row = document.getElementById(id);
    var cell = row.querySelector('.sig');
    row.setAttribute('data-status', verdict.ok ? 'verified' : 'failed');
    cell.className = 'sig ' + (verdict.ok ? 'ok' : 'bad');
    cell.textContent = verdict.ok ? 'verified (' + verdict.signers.join(', ') + ')' : 'FAILED (' + verdict.why + ')';
  }

  async function chooseEngine() {
    var forced = new URLSearchParams(location.search).get('engine');
    if (forced === 'noble') return nobleEngine(noble);
    var webcrypto = await webCryptoEngine();
    if (webcrypto) return webcrypto;
    if (forced === 'webcrypto') throw new Error('this browser has no WebCrypto Ed25519');
    return nobleEngine(noble);
  }

  async function run() {
    button.disabled = true;
    summary.textContent = 'Verifying…';
    if (!globalThis.crypto || !globalThis.crypto.subtle) {
      throw new Error('this browser offers no WebCrypto here (open the file directly, or over https)');
    }
    var engine = await chooseEngine();
    var verified = 0;
    var failed = 0;
    for (var i = 0; i < model.receipts.length; i++) {
      var r = await verifyReceipt(model.receipts[i], model.keys, engine, noble, (model.thresholds || {}).evidence || 1);
      mark('receipt-' + i, r);
      if (r.ok) verified++; else failed++;
      if (i % 100 === 99) summary.textContent = 'Verifying… ' + (i + 1) + ' of ' + model.receipts.length + ' receipts';
    }
    for (var j = 0; j < model.checkpoints.length; j++) {
      var c = await verifyCheckpoint(model.checkpoints[j], model.keys, engine, noble, (model.thresholds || {}).audit || 1);
      mark('checkpoint-' + j, c);
      if (c.ok) verified++; else failed++;
    }
    summary.setAttribute('data-verified', String(verified));
    summary.setAttribute('data-failed', String(failed));
    summary.setAttribute('data-engine', engine.name);
    summary.className = failed === 0 ? 'ok' : 'bad';
    summary.textContent = verified + ' verified, ' + failed + ' FAILED, of ' + (model.receipts.length + model.checkpoints.length) +
      ' signed documents (' + model.receipts.length + ' receipts, ' + model.checkpoints.length + ' checkpoints), with ' +
      (engine.name === 'webcrypto' ? "the browser's WebCrypto Ed25519" : '@noble/ed25519 (strict)') + '.';
    button.disabled = false;
  }

  button.addEventListener('click', function () {
    run().catch(function (e) {
      summary.className = 'bad';
      summary.setAttribute('data-error', String(e && e.message));
      summary.textContent = 'Verification could not run: ' + (e && e.message);
      button.disabled = false;
    });
  });
  button.disabled = false;
}
`
