package io.olmoppl.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import io.olmoppl.checkpoint.AttentionKind;
import io.olmoppl.checkpoint.OlmoConfig;

/**
 * Causal multi-head self-attention with grouped kv heads, rotary positions, optional {@code
 * clip_qkv} (after the QK-norm where there is one, as OLMoE) and OLMo-2's QK-norm, over all earlier
 * keys or (Olmo 3's sliding layers) the last W keys, with the rotary table of its {@link
 * AttentionKind}. Mirrors {@code OlmoAttention.forward} in transformers {@code modeling_olmo.py} /
 * {@code modeling_olmo2.py}; q, k and v come from one fused projection (hf_olmo's own layout), and
 * the scores are computed by query blocks ({@link Ops#attention}).
 */
final class Attention implements Mixer {
  private final int heads; // H
  private final int kvHeads; // K
  private final int headDim; // D
  private final long width; // H*D (= C unless the config gives head_dim)
  private final AttentionKind kind;
  private final long kvDim; // K*D
  private final Double clipQkv;
  private final NDArray qkv; // (C + 2*K*D, C): [Q | K | V] rows
  private final NDArray qkvBias; // or null
  private final NDArray out; // (C, C)
  private final NDArray outBias; // or null
  private final Norm qNorm; // OLMo-2 QK-norm, or null
  private final Norm kNorm;
  private final Precision precision;

  /**
   * @param kind full causal attention, or a sliding window of the config's width
   */
  Attention(OlmoConfig c, OlmoWeights.LayerWeights w, Precision precision, AttentionKind kind) {
    this.kind = kind;
    this.heads = c.numAttentionHeads();
    this.kvHeads = c.numKeyValueHeads();
    this.headDim = c.headDim();
    this.width = c.qDim();
    this.kvDim = c.kvDim();
    this.clipQkv = c.clipQkv();
    this.qkv = w.qkv();
    this.qkvBias = w.qkvBias();
    this.out = w.out();
    this.outBias = w.outBias();
    this.qNorm = c.qkNorm() ? Norm.rms(w.qNormW(), c.normEps()) : null;
    this.kNorm = c.qkNorm() ? Norm.rms(w.kNormW(), c.normEps()) : null;
    this.precision = precision;
  }

  @Override
  public NDArray forward(NDArray x, Context pass) {
    int b = pass.rows();
    int t = pass.length();
    int h = heads;
    int kvh = kvHeads;
    int d = headDim;
    Context.Tables tables = pass.of(kind);
    NDArray fused = Ops.linear(x, qkv, qkvBias, precision); // (B, T, H*D + 2*K*D)
    if (clipQkv != null && qNorm == null) {
      fused = fused.clip(-clipQkv, clipQkv);
    }
    NDList parts = fused.split(new long[] {width, width + kvDim}, 2);
    NDArray q = parts.get(0); // (B, T, H*D)
    NDArray k = parts.get(1); // (B, T, K*D)
    NDArray v = parts.get(2);
    if (qNorm != null) {
      // OLMo-2 QK-norm: RMSNorm over the full projected width, before the head split
      q = qNorm.apply(q);
      k = kNorm.apply(k);
      if (clipQkv != null) { // OLMoE clips after the norms
        q = q.clip(-clipQkv, clipQkv);
        k = k.clip(-clipQkv, clipQkv);
        v = v.clip(-clipQkv, clipQkv);
      }
    }
    // RoPE: rotate each head's query and key by its position
    q =
        Ops.rope(q.reshape(b, t, h, d), tables.cos(), tables.sin())
            .transpose(0, 2, 1, 3); // (B, H, T, D)
    // keys and values made contiguous as (B, K, T, D): reshaping through (B*K, T, D) copies once
    k =
        Ops.rope(k.reshape(b, t, kvh, d), tables.cos(), tables.sin())
            .transpose(0, 2, 1, 3)
            .reshape(b * (long) kvh, t, d)
            .reshape(b, kvh, t, d);
    v =
        v.reshape(b, t, kvh, d)
            .transpose(0, 2, 1, 3)
            .reshape(b * (long) kvh, t, d)
            .reshape(b, kvh, t, d);
    // softmax(q k^T / sqrt(D) + causal or sliding mask) v, by query blocks over the keys in reach
    NDArray att =
        Ops.attention(q, k, v, precision, tables.blocks()).reshape(b, t, width); // (B, T, H*D)
    return Ops.linear(att, out, outBias, precision); // (B, T, C)
  }
}
