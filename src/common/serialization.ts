import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type {Constraint} from '@tensorflow/tfjs-layers/dist/constraints.js';
import type {Initializer} from '@tensorflow/tfjs-layers/dist/initializers.js';
import type {Regularizer} from '@tensorflow/tfjs-layers/dist/regularizers.js';

import {fail} from './arguments.js';

export type {Constraint, Initializer, Regularizer};

/** The {className, config} form tfjs uses for nested serializable objects. */
export type SerializedObject = {
  className: string;
  config: tf.serialization.ConfigDict;
};

export function serializeObject(obj: tf.serialization.Serializable | undefined): SerializedObject | null {
  return obj === undefined ? null : {className: obj.getClassName(), config: obj.getConfig()};
}

/**
 * An initializer, regularizer or constraint from an instance, its serialized
 * form (what getConfig wrote) or, for initializers, a tfjs identifier such as
 * 'glorotUniform' or 'heNormal' (the factory names of tf.initializers).
 */
export function deserializeObject<T extends tf.serialization.Serializable>(
    value: T | SerializedObject | string | null | undefined, kind: string, seed?: number): T | undefined {
  if (value === undefined || value === null) return undefined;
  if (value instanceof tf.serialization.Serializable) return value;
  if (typeof value === 'string') {
    const factories = tfl.initializers as unknown as Record<string, (args: object) => T>;
    if (kind !== 'initializer' || typeof factories[value] !== 'function') {
      fail(`unknown ${kind} '${value}'; pass an instance (e.g. tf.${kind}s.*) instead`);
    }
    return factories[value](seed === undefined ? {} : {seed});
  }
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[value.className];
  if (entry === undefined) fail(`unknown ${kind} class '${value.className}'`);
  const [cls, fromConfig] = entry;
  return fromConfig(cls, value.config) as T;
}
