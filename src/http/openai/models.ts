import { modelNotFound } from '../../calls/errors.ts';
import type { RoutableProduct } from '../../catalog/catalog-snapshot.ts';
import { sendJson } from '../respond.ts';
import type { OpenAIDeps, RequestContext } from './context.ts';
import { sendOpenAIError } from './errors.ts';

/**
 * OpenAI's model object; a product evaluated through the hub also carries its latest score per suite
 * (with the date and the interval) in `metadata.evaluations`, beside the fields clients rely on.
 */
function toModel(deps: OpenAIDeps, p: RoutableProduct) {
  const model = { id: p.model, object: 'model', created: p.createdAtSeconds, owned_by: p.supplierName };
  const evaluations = deps.scores?.of(p.id) ?? [];
  return evaluations.length === 0 ? model : { ...model, metadata: { evaluations } };
}

/** The products this key may use (and its organisation's data may go to), as OpenAI's model list. */
export function handleListModels(deps: OpenAIDeps, ctx: RequestContext): void {
  const data = [];
  for (const product of deps.catalog.all()) {
    if (ctx.caller.allowedModels && !ctx.caller.allowedModels.has(product.model)) continue;
    if (!deps.calls.mayServe(ctx.caller, product)) continue;
    data.push(toModel(deps, product));
  }
  data.sort((a, b) => a.id.localeCompare(b.id));
  sendJson(ctx.res, 200, { object: 'list', data }, { 'x-request-id': ctx.requestId });
}

export function handleRetrieveModel(deps: OpenAIDeps, ctx: RequestContext, model: string): void {
  const product = deps.calls.resolve(ctx.caller, model);
  if (!product || !deps.calls.mayServe(ctx.caller, product)) {
    sendOpenAIError(ctx.res, modelNotFound(model), ctx.requestId);
    return;
  }
  sendJson(ctx.res, 200, toModel(deps, product), { 'x-request-id': ctx.requestId });
}
