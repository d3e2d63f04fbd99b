package io.olmoppl.checkpoint;

import java.io.Serializable;

/**
 * The rotary embedding of one kind of layer: plain ({@code default}: inverse frequencies
 * theta^(-2i/D)) or YaRN ({@code yarn}: a blend of those and the same divided by {@code factor},
 * and cos and sin both multiplied by {@code attentionFactor}). The inverse frequencies are computed
 * in one place, {@code io.olmoppl.model.Rope}.
 *
 * @param theta rope_theta
 * @param type default or yarn
 * @param factor YaRN's scaling factor (1 for default)
 * @param originalMaxPositions YaRN's {@code original_max_position_embeddings} L0 (0 for default)
 * @param betaFast YaRN's {@code beta_fast}
 * @param betaSlow YaRN's {@code beta_slow}
 * @param attentionFactor the magnitude cos and sin are multiplied by (1 for default)
 * @param truncate YaRN's {@code truncate}: round the ramp bounds down and up (true in every
 *     release)
 */
public record RopeParameters(
    double theta,
    Type type,
    double factor,
    int originalMaxPositions,
    double betaFast,
    double betaSlow,
    double attentionFactor,
    boolean truncate)
    implements Serializable {

  /** The rope types olmo-ppl computes. */
  public enum Type {
    DEFAULT("default"),
    YARN("yarn");

    private final String id;

    Type(String id) {
      this.id = id;
    }

    /**
     * @return the {@code rope_type} value
     */
    public String id() {
      return id;
    }
  }

  /**
   * @return plain rotary embedding with base {@code theta}
   */
  public static RopeParameters plain(double theta) {
    return new RopeParameters(theta, Type.DEFAULT, 1.0, 0, 0, 0, 1.0, true);
  }

  /**
   * @return YaRN's default attention factor for {@code factor}: 0.1 ln(factor) + 1 (1 when factor
   *     <= 1), as transformers' {@code get_mscale}
   */
  public static double defaultAttentionFactor(double factor) {
    return factor <= 1 ? 1.0 : 0.1 * Math.log(factor) + 1.0;
  }

  /**
   * @return a short description, e.g. {@code yarn factor 8 over 8192, attention factor 1.2079}
   */
  public String describe() {
    if (type == Type.DEFAULT) {
      return "default theta " + fmt(theta);
    }
    return "yarn theta "
        + fmt(theta)
        + " factor "
        + fmt(factor)
        + " over "
        + originalMaxPositions
        + " (beta_fast "
        + fmt(betaFast)
        + ", beta_slow "
        + fmt(betaSlow)
        + "), attention factor "
        + attentionFactor;
  }

  private static String fmt(double v) {
    return v == Math.rint(v) && Math.abs(v) < 1e15 ? String.valueOf((long) v) : String.valueOf(v);
  }
}
