package io.olmoppl.checkpoint;

import java.io.Serializable;
import java.util.Collections;
import java.util.List;

/**
 * The attention of every layer: the head dim, each layer's {@link AttentionKind}, the sliding
 * window, and the rotary embedding of each kind (Olmo 3: plain on sliding layers, YaRN on full
 * ones).
 *
 * @param explicitHeadDim the config's {@code head_dim}, or 0 when D = hidden / heads
 * @param kinds one kind per layer
 * @param slidingWindow W, the keys a sliding layer's query sees (itself included); 0 when no layer
 *     slides
 * @param fullRope the rotary embedding of full-attention layers
 * @param slidingRope the rotary embedding of sliding layers
 */
public record AttentionSpec(
    int explicitHeadDim,
    List<AttentionKind> kinds,
    int slidingWindow,
    RopeParameters fullRope,
    RopeParameters slidingRope)
    implements Serializable {

  public AttentionSpec {
    // a corrupt layer count is refused by OlmoConfig; do not copy billions of entries first
    kinds = kinds.size() > OlmoConfig.MAX_LAYERS ? kinds : List.copyOf(kinds);
  }

  /**
   * @return {@code layers} full-attention layers with plain rotary embeddings of base {@code
   *     theta}, D = hidden / heads (OLMo-1, OLMo-2)
   */
  public static AttentionSpec allFull(int layers, double theta) {
    RopeParameters plain = RopeParameters.plain(theta);
    return new AttentionSpec(
        0, Collections.nCopies(Math.max(0, layers), AttentionKind.FULL), 0, plain, plain);
  }

  /**
   * @return layer {@code i}'s kind
   */
  public AttentionKind kind(int i) {
    return kinds.get(i);
  }

  /**
   * @return the rotary embedding of layers of kind {@code k}
   */
  public RopeParameters rope(AttentionKind k) {
    return k == AttentionKind.SLIDING ? slidingRope : fullRope;
  }

  /**
   * @return how many layers are of kind {@code k}
   */
  public int count(AttentionKind k) {
    return (int) kinds.stream().filter(x -> x == k).count();
  }

  /**
   * @return the keys a query of a layer of kind {@code k} can see at most: W for sliding layers,
   *     unbounded (Integer.MAX_VALUE) for full ones
   */
  public int reach(AttentionKind k) {
    return k == AttentionKind.SLIDING ? slidingWindow : Integer.MAX_VALUE;
  }

  /**
   * @return e.g. {@code sliding ×3, full ×1} in layer order of first appearance
   */
  public String describeKinds() {
    StringBuilder b = new StringBuilder();
    for (AttentionKind k : kinds.stream().distinct().toList()) {
      if (b.length() > 0) {
        b.append(", ");
      }
      b.append(k).append(" \u00d7").append(count(k));
    }
    return b.toString();
  }
}
