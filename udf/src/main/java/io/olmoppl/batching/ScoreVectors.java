package io.olmoppl.batching;

import io.olmoppl.scoring.DocumentScore;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.complex.impl.UnionListWriter;

/**
 * The engine's result batch as Arrow vectors, one row per submitted text, in order: the score
 * columns' names and meaning (the Spark output columns are these, plus the model stamp).
 */
public final class ScoreVectors {
  public static final String TOKENS = "ppl_tokens";
  public static final String NLL = "ppl_nll";
  public static final String PERPLEXITY = "perplexity";
  public static final String BITS_PER_BYTE = "bits_per_byte";
  public static final String WINDOWS = "ppl_windows";
  public static final String STATUS = "ppl_status";
  public static final String TOKEN_LOGPROBS = "ppl_token_logprobs";

  private ScoreVectors() {}

  /**
   * @param tokenLogprobs whether to add the {@link #TOKEN_LOGPROBS} list column (null for a null
   *     text)
   * @return a root the caller closes
   */
  public static VectorSchemaRoot of(
      List<DocumentScore> scores, BufferAllocator allocator, boolean tokenLogprobs) {
    int n = scores.size();
    IntVector tokens = new IntVector(TOKENS, allocator);
    Float8Vector nll = new Float8Vector(NLL, allocator);
    Float8Vector ppl = new Float8Vector(PERPLEXITY, allocator);
    Float8Vector bpb = new Float8Vector(BITS_PER_BYTE, allocator);
    IntVector windows = new IntVector(WINDOWS, allocator);
    VarCharVector status = new VarCharVector(STATUS, allocator);
    List<FieldVector> vectors = new ArrayList<>(List.of(tokens, nll, ppl, bpb, windows, status));
    tokens.allocateNew(n);
    nll.allocateNew(n);
    ppl.allocateNew(n);
    bpb.allocateNew(n);
    windows.allocateNew(n);
    status.allocateNew(n);
    for (int i = 0; i < n; i++) {
      DocumentScore s = scores.get(i);
      tokens.set(i, s.tokens());
      nll.set(i, s.nll());
      setOrNull(ppl, i, s.perplexity());
      setOrNull(bpb, i, s.bitsPerByte());
      windows.set(i, s.windows());
      status.setSafe(i, s.status().getBytes(StandardCharsets.UTF_8));
    }
    if (tokenLogprobs) {
      ListVector lps = ListVector.empty(TOKEN_LOGPROBS, allocator);
      UnionListWriter w = lps.getWriter();
      for (int i = 0; i < n; i++) {
        DocumentScore s = scores.get(i);
        w.setPosition(i);
        if (s.status().equals(DocumentScore.NULL_TEXT)) {
          w.writeNull();
        } else {
          w.startList();
          for (double v : s.tokenLogprobs()) {
            w.float8().writeFloat8(v);
          }
          w.endList();
        }
      }
      w.setValueCount(n);
      vectors.add(lps);
    }
    VectorSchemaRoot root = new VectorSchemaRoot(vectors);
    root.setRowCount(n);
    return root;
  }

  private static void setOrNull(Float8Vector v, int i, Double d) {
    if (d == null) {
      v.setNull(i);
    } else {
      v.set(i, d);
    }
  }
}
