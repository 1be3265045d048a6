// The traffic side of platform/validate/acceptance.sh's egress checks: plain Node, no
// dependencies, so it runs inside a network namespace with the node binary alone.
//
//   node netprobe.mjs serve LOG
//     In the "outside" namespace: TCP listeners on 443, 8080 and 53 (DNS over TCP) and UDP DNS
//     servers on 53 and 5353, on every address. Every connection and every DNS question is
//     appended to LOG ("tcp PORT", "dns PORT NAME"); questions get an A answer 198.51.100.2.
//     Prints "ready" once everything listens.
//   node netprobe.mjs probe MS ID:tcp:HOST:PORT ID:dns-udp:HOST:PORT:NAME ID:dns-tcp:HOST:PORT:NAME …
//     In the sandbox namespace: runs every probe at once, each bounded by MS milliseconds, and
//     prints one line a probe: "ID reached" (connected / answered) or "ID blocked REASON".
import {appendFileSync} from 'node:fs'
import {createServer, connect} from 'node:net'
import {createSocket} from 'node:dgram'

const ANSWER = [198, 51, 100, 2]

function question(name, id) {
  const labels = name.split('.').filter(Boolean)
  const parts = [Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])]
  for (const label of labels) parts.push(Buffer.from([label.length]), Buffer.from(label, 'ascii'))
  parts.push(Buffer.from([0, 0, 1, 0, 1]))
  return Buffer.concat(parts)
}

/** The question name of a DNS message and where the question ends; undefined if malformed. */
function parseQuestion(msg) {
  let at = 12
  const labels = []
  while (at < msg.length) {
    const len = msg[at]
    if (len === 0) return {name: labels.join('.'), end: at + 5}
    if (len > 63 || at + 1 + len > msg.length) return undefined
    labels.push(msg.subarray(at + 1, at + 1 + len).toString('ascii'))
    at += 1 + len
  }
  return undefined
}

function answer(msg) {
  const q = parseQuestion(msg)
  if (!q || q.end > msg.length) return undefined
  const header = Buffer.from(msg.subarray(0, 12))
  header[2] = 0x81
  header[3] = 0x80
  header.writeUInt16BE(1, 6)
  const rr = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...ANSWER])
  return {name: q.name, reply: Buffer.concat([header, msg.subarray(12, q.end), rr])}
}

function serve(log) {
  const note = (line) => appendFileSync(log, `${line}\n`)
  let pending = 0
  const listening = () => {
    pending -= 1
    if (pending === 0) process.stdout.write('ready\n')
  }
  for (const port of [443, 8080]) {
    pending += 1
    createServer((socket) => {
      note(`tcp ${port}`)
      socket.end()
    }).listen(port, '0.0.0.0', listening)
  }
  pending += 1
  createServer((socket) => {
    let buffered = Buffer.alloc(0)
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk])
      if (buffered.length < 2 || buffered.length < 2 + buffered.readUInt16BE(0)) return
      const a = answer(buffered.subarray(2, 2 + buffered.readUInt16BE(0)))
      if (!a) return socket.destroy()
      note(`dns 53/tcp ${a.name}`)
      const length = Buffer.alloc(2)
      length.writeUInt16BE(a.reply.length)
      socket.end(Buffer.concat([length, a.reply]))
    })
    socket.on('error', () => {})
  }).listen(53, '0.0.0.0', listening)
  for (const port of [53, 5353]) {
    pending += 1
    const udp = createSocket('udp4')
    udp.on('message', (msg, from) => {
      const a = answer(msg)
      if (!a) return
      note(`dns ${port}/udp ${a.name}`)
      udp.send(a.reply, from.port, from.address)
    })
    udp.bind(port, '0.0.0.0', listening)
  }
}

function probe(spec, ms) {
  const [id, kind, host, portText, name] = spec.split(':')
  const port = Number(portText)
  return new Promise((resolve) => {
    let settled = false
    const done = (line, cleanup) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      cleanup?.()
      resolve(`${id} ${line}`)
    }
    let cleanup
    const timer = setTimeout(() => done(`blocked no answer within ${ms} ms`, cleanup), ms)
    if (kind === 'tcp') {
      const socket = connect({host, port})
      cleanup = () => socket.destroy()
      socket.on('connect', () => done('reached', cleanup))
      socket.on('error', (error) => done(`blocked ${error.code ?? error.message}`, cleanup))
    } else if (kind === 'dns-udp') {
      const udp = createSocket('udp4')
      cleanup = () => udp.close()
      udp.on('message', () => done('reached', cleanup))
      udp.on('error', (error) => done(`blocked ${error.code ?? error.message}`, cleanup))
      udp.send(question(name, 0x4242), port, host)
    } else if (kind === 'dns-tcp') {
      const socket = connect({host, port})
      cleanup = () => socket.destroy()
      socket.on('connect', () => {
        const q = question(name, 0x4343)
        const length = Buffer.alloc(2)
        length.writeUInt16BE(q.length)
        socket.write(Buffer.concat([length, q]))
      })
      socket.on('data', () => done('reached', cleanup))
      socket.on('error', (error) => done(`blocked ${error.code ?? error.message}`, cleanup))
    } else {
      done(`blocked unknown probe kind ${kind}`)
    }
  })
}

const [mode, ...rest] = process.argv.slice(2)
if (mode === 'serve' && rest[0]) {
  serve(rest[0])
} else if (mode === 'probe' && rest.length >= 2) {
  const ms = Number(rest[0])
  const lines = await Promise.all(rest.slice(1).map((spec) => probe(spec, ms)))
  process.stdout.write(`${lines.join('\n')}\n`)
} else {
  process.stderr.write('usage: netprobe.mjs serve LOG | probe MS ID:KIND:HOST:PORT[:NAME] …\n')
  process.exit(2)
}
