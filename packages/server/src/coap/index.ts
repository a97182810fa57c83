export { listenCoap, type CoapListener } from './listen.js';
