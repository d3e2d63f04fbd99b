package io.olmoppl.spark;

import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.PerplexityScorer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.complex.impl.UnionListWriter;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

/**
 * The scoring step inside Spark tasks: rows are taken in chunks, their texts put into an Arrow {@link VarCharVector},
 * scored on the executor's shared model, and the results written to Arrow vectors, then appended to the input rows.
 * Exactly one output row per input row; a row whose text is null gets status {@code null_text}.
 */
public final class ScorePartitionFunction implements MapPartitionsFunction<Row, Row> {
  private static final long serialVersionUID = 1L;
  /** Rows per chunk: enough documents to fill batches sorted by length, few enough to keep memory small. */
  static final int CHUNK_ROWS = 256;

  private final ModelSpec spec;
  private final int textIndex;
  private final ScoreMetrics metrics;

  /**
   * @param spec the model to score with
   * @param textIndex position of the text column in the input rows
   * @param metrics executor-side counters (may be null)
   */
  public ScorePartitionFunction(ModelSpec spec, int textIndex, ScoreMetrics metrics) {
    this.spec = spec;
    this.textIndex = textIndex;
    this.metrics = metrics;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) {
    if (!input.hasNext()) {
      return input;
    }
    ExecutorModels.Lease lease = ExecutorModels.get(spec);
    if (metrics != null) {
      metrics.recordLease(lease);
    }
    PerplexityScorer scorer = lease.loaded().scorer(spec);
    String fingerprint = spec.fingerprint();
    boolean lps = spec.options().tokenLogprobs();
    return new Iterator<>() {
      private Iterator<Row> current = java.util.Collections.emptyIterator();

      @Override
      public boolean hasNext() {
        while (!current.hasNext() && input.hasNext()) {
          List<Row> chunk = new ArrayList<>(CHUNK_ROWS);
          while (input.hasNext() && chunk.size() < CHUNK_ROWS) {
            chunk.add(input.next());
          }
          current = scoreChunk(scorer, chunk, fingerprint, lps).iterator();
        }
        return current.hasNext();
      }

      @Override
      public Row next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        return current.next();
      }
    };
  }

  private List<Row> scoreChunk(PerplexityScorer scorer, List<Row> rows, String fingerprint, boolean lps) {
    int n = rows.size();
    try (BufferAllocator alloc = new RootAllocator();
        VarCharVector text = new VarCharVector("text", alloc);
        IntVector tokens = new IntVector(ScoreColumns.TOKENS, alloc);
        Float8Vector nll = new Float8Vector(ScoreColumns.NLL, alloc);
        Float8Vector ppl = new Float8Vector(ScoreColumns.PERPLEXITY, alloc);
        Float8Vector bpb = new Float8Vector(ScoreColumns.BITS_PER_BYTE, alloc);
        IntVector windows = new IntVector(ScoreColumns.WINDOWS, alloc);
        VarCharVector status = new VarCharVector(ScoreColumns.STATUS, alloc);
        ListVector logprobs = ListVector.empty(ScoreColumns.TOKEN_LOGPROBS, alloc)) {
      // rows -> Arrow record batch of texts
      text.allocateNew(n);
      for (int i = 0; i < n; i++) {
        Object v = rows.get(i).get(textIndex);
        if (v == null) {
          text.setNull(i);
        } else {
          text.setSafe(i, v.toString().getBytes(StandardCharsets.UTF_8));
        }
      }
      text.setValueCount(n);
      List<String> texts = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        texts.add(text.isNull(i) ? null : new String(text.get(i), StandardCharsets.UTF_8));
      }
      List<DocumentScore> scores = scorer.score(texts);
      if (metrics != null) {
        metrics.recordScores(scores);
      }
      // scores -> Arrow result vectors
      tokens.allocateNew(n);
      nll.allocateNew(n);
      ppl.allocateNew(n);
      bpb.allocateNew(n);
      windows.allocateNew(n);
      status.allocateNew(n);
      UnionListWriter lw = logprobs.getWriter();
      for (int i = 0; i < n; i++) {
        DocumentScore s = scores.get(i);
        tokens.set(i, s.tokens());
        nll.set(i, s.nll());
        setOrNull(ppl, i, s.perplexity());
        setOrNull(bpb, i, s.bitsPerByte());
        windows.set(i, s.windows());
        status.setSafe(i, s.status().getBytes(StandardCharsets.UTF_8));
        if (lps) {
          lw.setPosition(i);
          if (s.status().equals(DocumentScore.NULL_TEXT)) {
            lw.writeNull();
          } else {
            lw.startList();
            for (double v : s.tokenLogprobs()) {
              lw.float8().writeFloat8(v);
            }
            lw.endList();
          }
        }
      }
      for (var v : List.of(tokens, nll, ppl, bpb, windows, status)) {
        v.setValueCount(n);
      }
      if (lps) {
        lw.setValueCount(n);
      }
      // Arrow -> rows: input columns, then the score columns
      List<Row> out = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        Row r = rows.get(i);
        int width = r.length() + ScoreColumns.fields(lps).size();
        Object[] values = new Object[width];
        for (int c = 0; c < r.length(); c++) {
          values[c] = r.get(c);
        }
        int c = r.length();
        values[c++] = tokens.get(i);
        values[c++] = nll.get(i);
        values[c++] = ppl.isNull(i) ? null : ppl.get(i);
        values[c++] = bpb.isNull(i) ? null : bpb.get(i);
        values[c++] = windows.get(i);
        values[c++] = new String(status.get(i), StandardCharsets.UTF_8);
        values[c++] = fingerprint;
        if (lps) {
          values[c] = logprobs.isNull(i) ? null : scala.jdk.javaapi.CollectionConverters.asScala(
              (List<?>) logprobs.getObject(i)).toSeq();
        }
        out.add(RowFactory.create(values));
      }
      return out;
    }
  }

  private static void setOrNull(Float8Vector v, int i, Double d) {
    if (d == null) {
      v.setNull(i);
    } else {
      v.set(i, d);
    }
  }
}
