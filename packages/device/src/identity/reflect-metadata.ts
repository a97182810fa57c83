/**
 * The three Reflect metadata functions tsyringe (a dependency of @peculiar/x509) checks for when it
 * loads and calls to read constructor parameter types. A program that already installed a full
 * polyfill (reflect-metadata, @abraham/reflection) keeps its own: this one is installed only when
 * `Reflect.getMetadata` is missing. Import it before @peculiar/x509.
 */
type Target = object;

interface MetadataReflect {
  defineMetadata?: (key: unknown, value: unknown, target: Target, property?: PropertyKey) => void;
  getOwnMetadata?: (key: unknown, target: Target, property?: PropertyKey) => unknown;
  getMetadata?: (key: unknown, target: Target, property?: PropertyKey) => unknown;
}

const reflect = Reflect as unknown as MetadataReflect;

if (typeof reflect.getMetadata !== 'function') {
  /** target → property (undefined: the target itself) → metadata key → value */
  const store = new WeakMap<Target, Map<PropertyKey | undefined, Map<unknown, unknown>>>();
  const own = (target: Target, property: PropertyKey | undefined, create: boolean) => {
    let byProperty = store.get(target);
    if (!byProperty) {
      if (!create) return undefined;
      store.set(target, (byProperty = new Map()));
    }
    let entries = byProperty.get(property);
    if (!entries && create) byProperty.set(property, (entries = new Map()));
    return entries;
  };
  reflect.defineMetadata = (key, value, target, property) => void own(target, property, true)!.set(key, value);
  reflect.getOwnMetadata = (key, target, property) => own(target, property, false)?.get(key);
  reflect.getMetadata = (key, target, property) => {
    // like reflect-metadata: the target's own, else along its prototype chain
    for (let t: Target | null = target; t !== null; t = Object.getPrototypeOf(t) as Target | null) {
      const entries = own(t, property, false);
      if (entries?.has(key)) return entries.get(key);
    }
    return undefined;
  };
}

export {};
