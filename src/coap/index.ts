export { listenCoap, coapOptionsFrom, type CoapListener } from './listen.js';
export { CoapEndpoint, defaultCoapOptions, type CoapOptions } from './endpoint.js';
export { contentFormatOf, contentTypeOf } from './content-format.js';
