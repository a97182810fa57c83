/** Fleetwire's device SDK. */
export const sdkName = '@fleetwire/device';
