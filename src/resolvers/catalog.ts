import { TollgateError } from '../errors.ts';

/** A fixed in-memory catalogue: a realistic list whose item fields carry different tiers. */
export interface CatalogItem {
  id: string;
  name: string;
  price: number;
  stock: number;
}

const maxItems = 1000;

const items: CatalogItem[] = Array.from({ length: maxItems }, (_, index) => ({
  id: `item-${index + 1}`,
  name: `Catalogue item ${index + 1}`,
  price: 100 + ((index * 37) % 900),
  stock: (index * 13) % 50,
}));

export const catalogResolvers = {
  Query: {
    catalog(_parent: unknown, args: { first?: number | null }) {
      const first = args.first ?? 20;
      if (!Number.isInteger(first) || first < 0 || first > maxItems) {
        throw new TollgateError('BAD_USER_INPUT', `first: must be between 0 and ${maxItems}.`, { field: 'first' });
      }
      return items.slice(0, first);
    },
  },
};
