// A forward proxy on 127.0.0.1 (absolute-form GETs and CONNECT tunnels) that logs what passed
// through it, so a test can prove traffic went through the proxy.
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'

export class Proxy {
  readonly seen: string[] = []
  private server!: http.Server
  // Tunnelled sockets leave the HTTP server's bookkeeping, so closeAllConnections() misses them:
  // the proxy keeps its own list to close them.
  private readonly sockets = new Set<net.Socket>()
  port = 0

  static async start(): Promise<Proxy> {
    const p = new Proxy()
    p.server = http.createServer((req, res) => {
      p.seen.push(`${req.method} ${req.url}`)
      const target = new URL(req.url ?? '')
      const upstream = http.request(
        { host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers)
          up.pipe(res)
        },
      )
      upstream.on('error', () => res.destroy())
      req.pipe(upstream)
    })
    p.server.on('connect', (req, socket, head) => {
      p.seen.push(`CONNECT ${req.url}`)
      const [host, port] = (req.url ?? '').split(':')
      const up = net.connect(Number(port), host, () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
        up.write(head)
        up.pipe(socket)
        socket.pipe(up)
      })
      p.track(socket)
      p.track(up)
      // A tunnel lives as long as both ends: when either closes, however it closed, the other is
      // closed too, so no half-open socket keeps the server from closing.
      up.on('close', () => socket.destroy())
      socket.on('close', () => up.destroy())
      up.on('error', () => socket.destroy())
      socket.on('error', () => up.destroy())
    })
    await new Promise<void>((resolve) => p.server.listen(0, '127.0.0.1', resolve))
    p.port = (p.server.address() as AddressInfo).port
    return p
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket)
    socket.on('close', () => this.sockets.delete(socket))
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
