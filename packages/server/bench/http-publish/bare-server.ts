// The reference for bench/http-publish: a bare Fastify server whose publish route takes the body
// as bytes, as Fleetwire's does, and answers 202 with nothing else done. Run as its own process;
// prints `{"port": n}` on standard output once listening, and exits on SIGTERM.
import Fastify from 'fastify';

const app = Fastify({ logger: false, bodyLimit: 256 * 1024 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
app.post('/channels/:id/messages', async (_req, reply) => reply.code(202).send());

await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 }) + '\n');
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
