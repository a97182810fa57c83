// The reference of bench/coap: a node-coap (`coap` package) server that answers every request with
// 2.04 and does nothing else. Prints {"port": …} once listening.
import coap from 'coap';

const server = coap.createServer({ type: 'udp4' }, (_req, res) => {
  res.code = '2.04';
  res.end();
});
server.listen(0, '127.0.0.1', () => {
  const address = (server as unknown as { _sock: { address(): { port: number } } })._sock.address();
  process.stdout.write(JSON.stringify({ port: address.port }) + '\n');
});
