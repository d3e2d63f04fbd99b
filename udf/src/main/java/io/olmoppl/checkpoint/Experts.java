package io.olmoppl.checkpoint;

import java.io.Serializable;

/**
 * The mixture-of-experts facts of a config (transformers' OLMoE and FlexOlmo: {@code num_experts},
 * {@code num_experts_per_tok}, {@code norm_topk_prob}); {@link OlmoConfig#experts()} is null for a
 * dense model. Each token's MLP is the sum of its {@code topK} experts' gated MLPs (each {@link
 * OlmoConfig#intermediateSize()} wide), weighted by their router probabilities.
 *
 * @param count experts per layer, E
 * @param topK experts each token uses, k
 * @param normTopkProb whether the k selected probabilities are divided by their sum (else used as
 *     they are: they sum to less than 1)
 */
public record Experts(int count, int topK, boolean normTopkProb) implements Serializable {
  private static final long serialVersionUID = 1L;

  /** Largest expert count accepted (released models have at most 64); more is a corrupt config. */
  public static final int MAX_EXPERTS = 1 << 12;

  public Experts {
    OlmoConfig.require(
        count > 0 && count <= MAX_EXPERTS,
        "num_experts " + count + " must be between 1 and " + MAX_EXPERTS);
    OlmoConfig.require(
        topK > 0 && topK <= count,
        "num_experts_per_tok " + topK + " must be between 1 and num_experts " + count);
  }

  /**
   * @return the parameters of one expert: gate, up and down, 3 x C x I
   */
  public static long perExpert(OlmoConfig c) {
    return 3L * c.hiddenSize() * c.intermediateSize();
  }

  /**
   * @param total every parameter the model loads
   * @return the parameters one token uses: all but the experts it is not routed to ({@code total}
   *     for a dense model)
   */
  public static long activeParameters(OlmoConfig c, long total) {
    Experts e = c.experts();
    return e == null
        ? total
        : total - (long) (e.count() - e.topK()) * c.numHiddenLayers() * perExpert(c);
  }
}
