package io.olmoppl.model;

import ai.djl.ndarray.NDArray;

/**
 * The position-wise part of a layer: the gated MLP today ({@link Mlp}); another kind (a mixture of
 * experts, say) is another class, chosen per layer where {@link OlmoModel} builds its layers. Being
 * position-wise, it may be run over any chunk of rows.
 */
interface FeedForward {
  /**
   * @param x (N, C) the sublayer's input rows, not modified
   * @return (N, C) the sublayer's output, before the residual add, in x's manager
   */
  NDArray forward(NDArray x);
}
