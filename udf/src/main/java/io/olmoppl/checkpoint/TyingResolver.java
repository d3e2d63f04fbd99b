package io.olmoppl.checkpoint;

import io.olmoppl.checkpoint.Checkpoint.Located;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;

/**
 * Decides whether the output projection is the embedding (tied) from the config's tying key and
 * what the checkpoint stores: a tied config with no output matrix, or with a byte-identical copy of
 * the embedding under the output's name (an alias), is tied; a tied config with a differing output
 * matrix is a conflict that the {@link TyingRule} settles or refuses; an untied config must store
 * its output matrix. Comparing the two matrices is the only data this reads at open.
 */
final class TyingResolver {
  private TyingResolver() {}

  static Tying resolve(OlmoConfig c, Map<String, Located> tensors, TyingRule rule) {
    String emb = c.layout().embedding();
    String out = c.layout().output();
    Located e = tensors.get(emb);
    Located o = tensors.get(out);
    String key =
        c.tyingKey() + (c.tyingKeyPresent() ? "" : " (absent: " + c.layout().id() + " default)");
    if (e == null) {
      throw CheckpointErrors.noEmbedding(c, emb);
    }
    if (!c.tied()) {
      if (o == null) {
        throw CheckpointErrors.untiedWithoutOutput(c, key, out, e.file().path());
      }
      return new Tying(false, List.of(), emb, out, null, List.of());
    }
    if (o == null) {
      return new Tying(true, List.of(emb), emb, emb, null, List.of());
    }
    StrictValidator.checkShape(out, o, new long[] {c.vocabRows(), c.hiddenSize()});
    // Same dtype: an alias is byte-identical (a fast buffer compare); across dtypes: equal after
    // exact widening.
    boolean alias =
        e.info().dtype() == o.info().dtype() ? sameBytes(e, o) : maxAbsDiff(e, o) == 0.0;
    if (alias) {
      return new Tying(true, List.of(emb, out), emb, emb, null, List.of());
    }
    String both = CheckpointErrors.tiedButDifferent(key, out, emb, maxAbsDiff(e, o));
    switch (rule) {
      case CONFIG:
        return new Tying(
            true,
            List.of(emb),
            emb,
            emb,
            out,
            List.of(
                both
                    + "; tying config: logits use "
                    + emb
                    + " (OLMo's rule) and "
                    + out
                    + " is ignored"));
      case CHECKPOINT:
        return new Tying(
            false,
            List.of(),
            emb,
            out,
            null,
            List.of(
                both + "; tying checkpoint: " + out + " is used as an untied output projection"));
      default:
        throw CheckpointErrors.tyingConflict(both, emb, out);
    }
  }

  private static boolean sameBytes(Located a, Located b) {
    List<ByteBuffer> x = a.file().map(a.info());
    List<ByteBuffer> y = b.file().map(b.info());
    try {
      for (int i = 0; i < x.size(); i++) {
        if (!x.get(i).equals(y.get(i))) {
          return false;
        }
      }
      return true;
    } finally {
      SafetensorsFile.unmap(x);
      SafetensorsFile.unmap(y);
    }
  }

  /**
   * Max |a - b| over all elements after exact widening to float ({@code +inf} for NaN mismatches).
   */
  private static double maxAbsDiff(Located a, Located b) {
    List<ByteBuffer> x = a.file().map(a.info());
    List<ByteBuffer> y = b.file().map(b.info());
    try {
      DType dx = a.info().dtype();
      DType dy = b.info().dtype();
      long n = a.info().numel();
      double max = 0;
      int cx = 0;
      int cy = 0;
      int px = 0;
      int py = 0;
      for (long i = 0; i < n; i++) {
        if (px >= x.get(cx).capacity()) {
          cx++;
          px = 0;
        }
        if (py >= y.get(cy).capacity()) {
          cy++;
          py = 0;
        }
        float fx = DType.widen(dx, x.get(cx), px);
        float fy = DType.widen(dy, y.get(cy), py);
        px += dx.bytes();
        py += dy.bytes();
        double d = Math.abs((double) fx - fy);
        if (Double.isNaN(d)) {
          d = Float.isNaN(fx) && Float.isNaN(fy) ? 0 : Double.POSITIVE_INFINITY;
        }
        max = Math.max(max, d);
      }
      return max;
    } finally {
      SafetensorsFile.unmap(x);
      SafetensorsFile.unmap(y);
    }
  }
}
