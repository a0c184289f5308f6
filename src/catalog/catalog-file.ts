import { z } from 'zod';
import { ValidationError } from '../errors.ts';
import { parseInput } from '../validation.ts';
import {
  PRODUCT_STATUSES,
  priceReferenceInput,
  productInput,
  suggestedDeploymentInput,
  supplierInput,
} from './catalog-records.ts';

/**
 * A catalogue file: suppliers with their products, as shipped in src/catalog/seed/catalog.json and as
 * `kaihub catalog export` writes it. Products take the admin API's fields and rules (catalog-records.ts),
 * plus where their price comes from (`price`) and how they are usually deployed.
 */
const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date, YYYY-MM-DD');

const fileProduct = productInput
  .omit({ supplierId: true, status: true, fallbackModels: true, routingStrategy: true, priceReference: true })
  .extend({
    /** The published list price the KRW prices come from: currency, amounts, source, date read. */
    price: priceReferenceInput.optional(),
    suggestedDeployment: suggestedDeploymentInput.optional(),
    /** Used only when the import creates the product (default active: listed, callable once deployed). */
    status: z.enum(PRODUCT_STATUSES).optional(),
  });

const fileSupplier = supplierInput.pick({ name: true, nameEn: true, website: true }).extend({
  products: z.array(fileProduct).max(10_000),
});

export const catalogFileSchema = z.strictObject({
  version: z.literal(1),
  generatedAt: isoDate,
  exchangeRates: z
    .array(
      z.strictObject({
        currency: z.string().regex(/^[A-Z]{3}$/),
        krwPerUnit: z.string().regex(/^\d+(\.\d+)?$/),
        source: z.string().trim().min(1).max(2000),
        date: isoDate,
      }),
    )
    .default([]),
  suppliers: z.array(fileSupplier).max(10_000),
});

export type CatalogFile = z.infer<typeof catalogFileSchema>;
export type CatalogFileProduct = CatalogFile['suppliers'][number]['products'][number];

/** Validates a catalogue file; every problem names its place (`suppliers.2.products.0.priceInputPer1M`). */
export function parseCatalogFile(input: unknown): CatalogFile {
  const file = parseInput(catalogFileSchema, input);
  const problems: { field: string; message: string }[] = [];
  const suppliers = new Map<string, number>();
  const models = new Map<string, string>();
  file.suppliers.forEach((supplier, i) => {
    if (suppliers.has(supplier.name))
      problems.push({
        field: `suppliers.${i}.name`,
        message: `"${supplier.name}" is also suppliers.${suppliers.get(supplier.name)}`,
      });
    suppliers.set(supplier.name, i);
    supplier.products.forEach((product, j) => {
      const here = `suppliers.${i}.products.${j}`;
      if (models.has(product.model))
        problems.push({
          field: `${here}.model`,
          message: `"${product.model}" is also ${models.get(product.model)}`,
        });
      models.set(product.model, here);
    });
  });
  if (problems.length > 0) throw new ValidationError(problems);
  return file;
}
