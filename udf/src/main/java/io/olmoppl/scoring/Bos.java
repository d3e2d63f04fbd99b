package io.olmoppl.scoring;

import java.util.Locale;

/**
 * The prefix token fed before a document (README, "Scoring contract"; lm-evaluation-harness
 * prefixes EOS).
 */
public enum Bos {
  /** The config's BOS if it has one, else EOS: the lm-eval / Paloma convention. */
  AUTO,
  /** Always EOS. */
  EOS,
  /** No prefix: the first text token is context only. */
  NONE;

  public static Bos parse(String s) {
    try {
      return valueOf(s.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("--bos must be auto, eos or none, not '" + s + "'");
    }
  }

  public String id() {
    return name().toLowerCase(Locale.ROOT);
  }
}
