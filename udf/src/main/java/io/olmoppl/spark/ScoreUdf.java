package io.olmoppl.spark;

import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.PerplexityScorer;
import java.nio.charset.StandardCharsets;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.VarCharVector;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.api.java.UDF1;

/**
 * The SQL function of {@link OlmoPerplexity#register}: one row per call, handed to the executor's
 * engine, which batches it with the rows that other tasks hand it at the same time. Returns the
 * score columns ({@link ScoreColumns}) as one struct.
 */
final class ScoreUdf implements UDF1<String, Row> {
  private static final long serialVersionUID = 1L;
  private final ModelSpec spec;

  /** Per task: the UDF is deserialized with each task, so the engine follows the task's device. */
  private transient ScoringEngine engine;

  private transient PerplexityScorer scorer;

  ScoreUdf(ModelSpec spec) {
    this.spec = spec;
  }

  @Override
  public Row call(String text) throws InterruptedException {
    if (engine == null) {
      engine = ExecutorModels.get(spec).loaded().engine();
      scorer = engine.scorer(spec.options());
    }
    DocumentScore s;
    try (BufferAllocator alloc = ExecutorArrow.newBatchAllocator();
        VarCharVector texts = new VarCharVector("text", alloc)) {
      texts.allocateNew(1);
      if (text == null) {
        texts.setNull(0);
      } else {
        texts.setSafe(0, text.getBytes(StandardCharsets.UTF_8));
      }
      texts.setValueCount(1);
      s = engine.score(texts, scorer).get(0);
    }
    return RowFactory.create(ScoreColumns.values(s, spec.stamp(), spec.options().tokenLogprobs()));
  }
}
