export * from './document.js';
export * from './query.js';
export * from './store.js';
export * from './service.js';
