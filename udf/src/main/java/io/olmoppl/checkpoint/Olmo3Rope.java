package io.olmoppl.checkpoint;

import static io.olmoppl.checkpoint.CheckpointErrors.unsupported;
import static io.olmoppl.checkpoint.OlmoConfig.bool;
import static io.olmoppl.checkpoint.OlmoConfig.dbl;
import static io.olmoppl.checkpoint.OlmoConfig.integer;
import static io.olmoppl.checkpoint.OlmoConfig.present;
import static io.olmoppl.checkpoint.OlmoConfig.require;
import static io.olmoppl.checkpoint.OlmoConfig.str;

import com.google.gson.JsonObject;
import java.util.List;
import java.util.Set;

/**
 * Reads an Olmo 3 config's rotary embedding per layer kind (OLMO-FAMILY.md §2.5). Three forms
 * occur:
 *
 * <ul>
 *   <li>legacy {@code rope_scaling} + {@code rope_theta} (the released repos): the scaling on the
 *       full-attention layers, plain rotary with the same theta on sliding ones;
 *   <li>nested {@code rope_parameters} {@code {full_attention: {..}, sliding_attention: {..}}}
 *       (transformers 5 {@code save_pretrained}): each kind as written;
 *   <li>flat {@code rope_parameters} {@code {rope_type: yarn, ..}} (some 5.0-dev saves): YaRN on
 *       the full layers only, as OLMo-core trains and transformers 4.57 computes, with a warning
 *       (transformers 5.18 drops YaRN entirely for this form).
 * </ul>
 *
 * YaRN never goes on sliding layers in any form: OLMo-core refuses to export such a model.
 */
final class Olmo3Rope {
  private Olmo3Rope() {}

  /** Olmo3Config's {@code default_theta}. */
  static final double DEFAULT_THETA = 500000.0;

  /** The rotary embedding of each kind. */
  record Ropes(RopeParameters full, RopeParameters sliding) {}

  private static final Set<String> KNOWN =
      Set.of(
          "rope_type",
          "type",
          "rope_theta",
          "factor",
          "original_max_position_embeddings",
          "beta_fast",
          "beta_slow",
          "attention_factor",
          "truncate");

  static Ropes read(JsonObject j, String where, List<String> warnings) {
    double theta = dbl(j, "rope_theta", DEFAULT_THETA);
    int maxPositions = integer(j, "max_position_embeddings", 2048);
    if (present(j, "rope_parameters")) {
      JsonObject p = j.getAsJsonObject("rope_parameters");
      String full = AttentionKind.FULL.configName();
      String sliding = AttentionKind.SLIDING.configName();
      if (p.has(full) || p.has(sliding)) {
        RopeParameters f =
            present(p, full)
                ? one(
                    p.getAsJsonObject(full),
                    theta,
                    maxPositions,
                    where,
                    "rope_parameters." + full,
                    warnings)
                : RopeParameters.plain(theta);
        RopeParameters s =
            present(p, sliding)
                ? one(
                    p.getAsJsonObject(sliding),
                    theta,
                    maxPositions,
                    where,
                    "rope_parameters." + sliding,
                    warnings)
                : RopeParameters.plain(theta);
        if (s.type() != RopeParameters.Type.DEFAULT) {
          throw unsupported(
              where,
              "rope scaling on sliding-window layers (rope_parameters."
                  + sliding
                  + " "
                  + p.get(sliding)
                  + "; Olmo 3 scales the full-attention layers only)");
        }
        return new Ropes(f, s);
      }
      RopeParameters flat = one(p, theta, maxPositions, where, "rope_parameters", warnings);
      if (flat.type() != RopeParameters.Type.DEFAULT) {
        warnings.add(
            where
                + ": rope_parameters is one flat "
                + flat.type().id()
                + " entry, not one per layer type; olmo-ppl applies it to the full-attention layers"
                + " only (as OLMo-core trains Olmo 3 and transformers 4.57 computes it; transformers"
                + " 5.18 drops it for this form)");
      }
      return new Ropes(flat, RopeParameters.plain(flat.theta()));
    }
    if (present(j, "rope_scaling")) {
      RopeParameters f =
          one(
              j.getAsJsonObject("rope_scaling"),
              theta,
              maxPositions,
              where,
              "rope_scaling",
              warnings);
      return new Ropes(f, RopeParameters.plain(theta));
    }
    return new Ropes(RopeParameters.plain(theta), RopeParameters.plain(theta));
  }

  /** One rope entry; {@code theta} when it names none. */
  private static RopeParameters one(
      JsonObject p,
      double theta,
      int maxPositions,
      String where,
      String key,
      List<String> warnings) {
    for (String k : p.keySet()) {
      if (!KNOWN.contains(k)) {
        throw unsupported(where, key + " key " + k + " (in " + p + ")");
      }
    }
    String type = str(p, "rope_type", str(p, "type", "default"));
    double t = dbl(p, "rope_theta", theta);
    require(
        Double.isFinite(t) && t > 0,
        where + ": " + key + " rope_theta " + t + " must be a positive number");
    if (type.equals("default")) {
      return RopeParameters.plain(t);
    }
    if (!type.equals("yarn")) {
      throw unsupported(
          where, key + " rope_type " + type + " (olmo-ppl computes default and yarn)");
    }
    double factor = dbl(p, "factor", 1.0);
    require(factor >= 1, where + ": " + key + " factor " + factor + " must be at least 1");
    int original = integer(p, "original_max_position_embeddings", maxPositions);
    require(
        original > 0,
        where + ": " + key + " original_max_position_embeddings " + original + " must be positive");
    double fast = dbl(p, "beta_fast", 32.0);
    double slow = dbl(p, "beta_slow", 1.0);
    require(fast > 0 && slow > 0, where + ": " + key + " beta_fast and beta_slow must be positive");
    double attention = dbl(p, "attention_factor", RopeParameters.defaultAttentionFactor(factor));
    require(
        attention > 0, where + ": " + key + " attention_factor " + attention + " must be positive");
    if (present(p, "original_max_position_embeddings")
        && Math.abs(factor - maxPositions / (double) original) > 1e-9 * factor) {
      // transformers 4.57 replaces factor by this ratio when both keys are given; released
      // configs agree (65536 / 8192 = 8)
      warnings.add(
          where
              + ": "
              + key
              + " factor "
              + factor
              + " differs from max_position_embeddings / original_max_position_embeddings = "
              + maxPositions / (double) original
              + "; olmo-ppl uses factor (some transformers versions use the ratio)");
    }
    return new RopeParameters(
        t,
        RopeParameters.Type.YARN,
        factor,
        original,
        fast,
        slow,
        attention,
        bool(p, "truncate", true));
  }
}
