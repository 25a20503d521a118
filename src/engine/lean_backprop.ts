/**
 * Backpropagation that frees memory as it goes. tfjs-core's
 * `Engine.gradients` keeps every intermediate gradient and every tensor saved
 * for the backward pass until the whole backward pass ends, so its peak is
 * the forward pass's saved tensors plus all gradients: ResNet-18 at batch 128
 * then needs ~6 GB, past the wasm backend's 4 GB heap. Here a node's saved
 * tensors and the gradients of its outputs are released as soon as the node
 * has been differentiated (PyTorch's autograd does the same), so the peak is
 * about the forward pass's saved tensors.
 *
 * Same arithmetic in the same order as tfjs-core 4.22.0 (pinned: this replaces
 * an engine method and reads its internals); higher-order gradients (a
 * gradient taken inside a gradient) keep tfjs's own method.
 */
import * as tf from '@tensorflow/tfjs-core';

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: Array<tf.Tensor | null>) => Record<string, () => tf.Tensor>;
}

interface EngineInternals {
  state: {activeTape: TapeNode[] | null; gradientDepth: number};
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T extends tf.TensorContainer>(nameOrFn: string | (() => T), fn?: () => T): T;
  gradients(f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor, allowNoGradients?: boolean):
    {value: tf.Tensor; grads: tf.Tensor[]};
}

let original: EngineInternals['gradients'] | undefined;

/** Turns the lean backward pass on (what useBackend does) or back to tfjs's own. */
export function setLeanBackprop(enabled: boolean): void {
  const engine = tf.engine() as unknown as EngineInternals;
  if (!enabled) {
    if (original !== undefined) engine.gradients = original;
    original = undefined;
    return;
  }
  if (original !== undefined) return;
  const tfjsGradients = engine.gradients.bind(engine);
  original = engine.gradients;
  engine.gradients = (f, xs, dy, allowNoGradients = false) => {
    // Nested gradients need the tape (and its saved tensors) after this call returns.
    if (engine.state.gradientDepth !== 0) return tfjsGradients(f, xs, dy, allowNoGradients);
    if (xs.length === 0) throw new Error('gradients() received an empty list of xs.');
    if (dy != null && dy.dtype !== 'float32') throw new Error(`dy must have 'float32' dtype, but has '${dy.dtype}'`);
    const y = engine.scopedRun(() => engine.startTape(), () => engine.endTape(), () => engine.tidy('forward', f));
    if (!(y instanceof tf.Tensor)) throw new Error('The result y returned by f() must be a tensor.');
    const tape = engine.state.activeTape!;
    const filtered = nodesFromXToY(tape, xs, y);
    if (!allowNoGradients && filtered.length === 0) {
      throw new Error('Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed ' +
                      'encloses all operations that lead from x to y.');
    }
    return engine.tidy('backward', () => {
      const grads = new Map<number, tf.Tensor>();
      grads.set(y.id, dy ?? tf.ones(y.shape));
      // The caller's dy and the gradients returned are not ours to free.
      const keep = new Set(xs.map(x => x.id));
      if (dy != null) keep.add(y.id);
      const nextId = () => (engine.constructor as unknown as {nextTensorId: number}).nextTensorId;
      backpropagate(grads, filtered, keep, fn => engine.tidy(fn), nextId);
      const result = xs.map(x => grads.get(x.id)!);
      for (const node of tape) for (const t of node.saved ?? []) t.dispose();
      engine.state.activeTape = null;
      return {value: y, grads: result};
    }) as {value: tf.Tensor; grads: tf.Tensor[]};
  };
}

/**
 * The tape nodes on a path from some x to y, each with only the inputs that
 * depend on an x (tfjs-core's getFilteredNodesXToY, which its Node bundle
 * does not export).
 */
function nodesFromXToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map(x => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some(input => fromX.has(input.id))) {
      nodesFromX.add(node.id);
      for (const output of node.outputs) fromX.add(output.id);
    }
  }
  const toY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some(output => toY.has(output.id))) {
      for (const input of Object.values(node.inputs)) toY.add(input.id);
      nodesToY.add(node.id);
    }
  }
  return tape.filter(node => nodesFromX.has(node.id) && nodesToY.has(node.id)).map(node => ({
    ...node,
    inputs: Object.fromEntries(Object.entries(node.inputs).filter(([, input]) => fromX.has(input.id))),
  }));
}

function backpropagate(grads: Map<number, tf.Tensor>, tape: TapeNode[], keep: Set<number>,
                       tidy: (fn: () => tf.Tensor) => tf.Tensor, nextId: () => number): void {
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    const dys = node.outputs.map(o => grads.get(o.id) ?? null);
    if (node.gradient == null) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
    const inputGradients = node.gradient(dys);
    for (const name in node.inputs) {
      if (!(name in inputGradients)) {
        throw new Error(`Cannot backprop through input ${name}. Available gradients found: ${Object.keys(inputGradients)}.`);
      }
      const firstNew = nextId();
      let dx = tidy(() => inputGradients[name]());
      // A gradient function may hand back a tensor that lives elsewhere (dy itself, a saved
      // tensor): give the map its own reference, so freeing one never frees the other.
      if (dx.id < firstNew) dx = tf.clone(dx);
      const x = node.inputs[name];
      if (dx.dtype !== 'float32') {
        throw new Error(`Error in gradient for op ${node.kernelName}. The gradient of input ${name} must have ` +
                        `'float32' dtype, but has '${dx.dtype}'`);
      }
      if (!tf.util.arraysEqual(dx.shape, x.shape)) {
        throw new Error(`Error in gradient for op ${node.kernelName}. The gradient of input '${name}' has shape ` +
                        `'${dx.shape}', which does not match the shape of the input '${x.shape}'`);
      }
      const current = grads.get(x.id);
      if (current === undefined) {
        grads.set(x.id, dx);
      } else {
        grads.set(x.id, tf.add(current, dx));
        current.dispose();
      }
    }
    // Every consumer of this node's outputs comes later on the tape, so their gradients are complete and used up.
    for (const o of node.outputs) {
      const g = grads.get(o.id);
      if (g !== undefined && !keep.has(o.id)) {
        g.dispose();
        grads.delete(o.id);
      }
    }
    for (const t of node.saved ?? []) t.dispose();
  }
}
