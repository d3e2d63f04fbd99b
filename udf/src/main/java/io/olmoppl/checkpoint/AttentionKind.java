package io.olmoppl.checkpoint;

import java.util.Locale;

/**
 * Which keys a layer's attention reads, as transformers' {@code layer_types} names it: every
 * earlier key of the window ({@code full_attention}), or only the last {@code sliding_window} keys
 * up to the query itself ({@code sliding_attention}, Olmo 3: query i sees keys j with i - W < j <=
 * i).
 */
public enum AttentionKind {
  FULL("full_attention"),
  SLIDING("sliding_attention");

  private final String configName;

  AttentionKind(String configName) {
    this.configName = configName;
  }

  /**
   * @return the name in {@code layer_types} and in nested {@code rope_parameters}
   */
  public String configName() {
    return configName;
  }

  /**
   * @return the kind named {@code name} in {@code layer_types}, or null
   */
  public static AttentionKind of(String name) {
    for (AttentionKind k : values()) {
      if (k.configName.equals(name)) {
        return k;
      }
    }
    return null;
  }

  @Override
  public String toString() {
    return name().toLowerCase(Locale.ROOT);
  }
}
