import { estimateCompletionTokens } from '../billing/token-estimate.ts';
import { usageProblem } from '../billing/usage-check.ts';
import type { CompletedCall } from '../providers/adapter.ts';
import type { Served } from '../routing/router.ts';
import type { CallOutcome, ModelCall } from './model-call.ts';
import { finishReasonsOf, usageOf } from './outcome-details.ts';

/**
 * The rest of a plain call's life (chat or embeddings) once its upstream answered: rewrite the answer
 * for the client (the product's id, the guard's restoring), check the upstream's counts, make the usage
 * record durable, settle, and only then hand the answer back to be written.
 */
export async function completePlainCall(
  call: ModelCall,
  served: Served<CompletedCall>,
): Promise<CallOutcome> {
  const deps = call.layer.deps;
  deps.router.finished(call, served, null);
  const { body: answer, usage } = served.result;
  call.servedAttemptEnded(null, usage);
  answer.model = served.product.model;
  const final = call.guardSession !== null ? call.guardSession.completed(answer) : answer;
  let counted = usage;
  let note: string | null = null;
  if (usage !== null) {
    note = usageProblem(usage, call.usageBounds(served.product));
    if (note !== null) counted = null;
  }
  const record = await call.meter(served.product, {
    firstTokenAt: null,
    deploymentId: served.deployment.id,
    status: 'ok',
    httpStatus: 200,
    errorCode: null,
    promptTokens: counted ? counted.promptTokens : call.promptEstimate,
    completionTokens: counted
      ? counted.completionTokens
      : call.operation === 'chat'
        ? estimateCompletionTokens(answer)
        : 0,
    usageSource: counted ? 'upstream' : 'estimate',
    usageNote: note,
    chargeable: true,
  });
  call.settle(record);
  // the client reads what it was billed: counts the hub estimated replace the upstream's (or its none)
  if (counted === null) answer.usage = usageOf(call.operation, record);
  call.ended(
    200,
    null,
    record,
    served,
    typeof answer.id === 'string' ? answer.id : null,
    finishReasonsOf(answer),
  );
  if (deps.settings.logContent) call.logContent({ response: final });
  return { type: 'completed', body: final };
}
