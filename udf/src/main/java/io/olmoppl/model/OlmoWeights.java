package io.olmoppl.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.checkpoint.WeightSource;

/**
 * A model's weight tensors, as {@link WeightLoader} made them in the weights' manager. Names follow
 * the checkpoint's roles; shapes use {@link OlmoModel}'s letters. The tied embedding/output matrix
 * is ONE tensor: {@code output == embedding} when tied, never a copy.
 *
 * @param embedding (V, C) token embedding
 * @param output (V, C) output projection; the same object as {@code embedding} when tied
 * @param outputBias (V) or null
 * @param layers the blocks' weights, in order
 * @param finalNormWeight (C) or null
 * @param finalNormBias (C) or null
 * @param ones (C) the scale of a layer norm without weight; null where the layout uses RMSNorm
 * @param zeros (C) the shift of a layer norm without bias; likewise
 */
record OlmoWeights(
    NDArray embedding,
    NDArray output,
    NDArray outputBias,
    LayerWeights[] layers,
    NDArray finalNormWeight,
    NDArray finalNormBias,
    NDArray ones,
    NDArray zeros) {

  /**
   * One block's weights, null where the layout has none. Fused: qkv = [Q | K | V] rows, upGate =
   * [up | gate] rows (hf_olmo's own layout).
   */
  record LayerWeights(
      NDArray qkv, // (C + 2*K*D, C)
      NDArray qkvBias,
      NDArray out, // (C, C)
      NDArray outBias,
      NDArray upGate, // (2*I, C)
      NDArray upGateBias,
      NDArray down, // (C, I)
      NDArray downBias,
      NDArray attnNormW, // (C)
      NDArray attnNormB,
      NDArray ffNormW,
      NDArray ffNormB,
      NDArray qNormW, // (C), OLMo-2 QK-norm
      NDArray kNormW, // (K*D)
      NDArray router, // (E, C), a mixture of experts' (upGate and down are then null)
      ExpertWeights[] experts) {} // E, or empty

  /** One expert of a mixture of experts: a gated MLP, upGate = [up | gate] rows. */
  record ExpertWeights(NDArray upGate, NDArray down) {} // (2*I, C), (C, I)

  /**
   * Loads every weight of {@code c} into {@code m} (not yet capped).
   *
   * @param src where the tensor bytes come from
   * @param tied whether the output projection is the embedding tensor itself
   * @param embName the embedding tensor
   * @param outName the output matrix (ignored when tied)
   */
  static OlmoWeights load(
      WeightSource src,
      NDManager m,
      Precision precision,
      OlmoConfig c,
      boolean tied,
      String embName,
      String outName) {
    return new WeightLoader(src, m, precision).load(c, tied, embName, outName);
  }
}
