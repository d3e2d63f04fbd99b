package io.olmoppl.spark;

import io.olmoppl.batching.ScoreRequest;
import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.PerplexityScorer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.VarCharVector;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

/**
 * The scoring step inside Spark tasks, a thin adapter over the executor's {@link ScoringEngine}:
 * rows are taken in chunks, their texts put into an Arrow {@link VarCharVector} (a child of the
 * executor's allocator), handed to the engine, and the engine's scores appended to the input rows
 * ({@link ScoreColumns#values}); the engine counts documents and tokens into {@link ScoreMetrics}
 * after each forward batch. Two chunks are in flight, so the next chunk is tokenized and queued
 * while the engine computes the current one. Exactly one output row per input row.
 */
public final class ScorePartitionFunction implements MapPartitionsFunction<Row, Row> {
  private static final long serialVersionUID = 1L;

  /**
   * Rows per chunk: enough documents to fill batches sorted by length, few enough to keep memory
   * small.
   */
  static final int CHUNK_ROWS = 256;

  /** Chunks a task keeps queued in the engine. */
  static final int IN_FLIGHT = 2;

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

  /** A chunk of rows handed to the engine. */
  private static final class Chunk implements AutoCloseable {
    final List<Row> rows;
    final BufferAllocator allocator;
    final VarCharVector texts;
    ScoreRequest request;
    private boolean closed;

    Chunk(List<Row> rows, int textIndex) {
      this.rows = rows;
      this.allocator = ExecutorArrow.newBatchAllocator();
      this.texts = new VarCharVector("text", allocator);
      texts.allocateNew(rows.size());
      for (int i = 0; i < rows.size(); i++) {
        Object v = rows.get(i).get(textIndex);
        if (v == null) {
          texts.setNull(i);
        } else {
          texts.setSafe(i, v.toString().getBytes(StandardCharsets.UTF_8));
        }
      }
      texts.setValueCount(rows.size());
    }

    @Override
    public synchronized void close() {
      if (!closed) {
        closed = true;
        if (request != null) {
          request.cancel();
        }
        texts.close();
        allocator.close();
      }
    }
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
    ScoringEngine engine = lease.loaded().engine();
    PerplexityScorer scorer = engine.scorer(spec.options());
    String fingerprint = spec.stamp();
    boolean lps = spec.options().tokenLogprobs();
    ArrayDeque<Chunk> inFlight = new ArrayDeque<>();
    TaskContext task = TaskContext.get();
    if (task != null) {
      // a killed or failed task drops its queued windows and frees its buffers
      task.addTaskCompletionListener(
          ctx -> {
            synchronized (inFlight) {
              inFlight.forEach(Chunk::close);
              inFlight.clear();
            }
          });
    }
    return new Iterator<>() {
      private Iterator<Row> current = Collections.emptyIterator();

      @Override
      public boolean hasNext() {
        while (!current.hasNext()) {
          Chunk next;
          synchronized (inFlight) {
            while (inFlight.size() < IN_FLIGHT && input.hasNext()) {
              List<Row> rows = new ArrayList<>(CHUNK_ROWS);
              while (input.hasNext() && rows.size() < CHUNK_ROWS) {
                rows.add(input.next());
              }
              Chunk c = new Chunk(rows, textIndex);
              inFlight.add(c);
              c.request = submit(engine, c, scorer, metrics);
            }
            next = inFlight.poll();
          }
          if (next == null) {
            return false;
          }
          try (Chunk c = next) {
            List<DocumentScore> scores = await(c.request);
            current = rows(c.rows, scores, fingerprint, lps).iterator();
          }
        }
        return true;
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

  /** Queues a chunk; the engine counts its documents and tokens into {@code metrics} per batch. */
  private static ScoreRequest submit(
      ScoringEngine engine, Chunk c, PerplexityScorer scorer, ScoreMetrics metrics) {
    try {
      return engine.submit(c.texts, scorer, metrics == null ? null : metrics::recordBatch);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while queueing documents for scoring", e);
    }
  }

  private static List<DocumentScore> await(ScoreRequest r) {
    try {
      return r.scores();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while waiting for scores", e);
    }
  }

  /** Input columns, then the score columns. */
  static List<Row> rows(List<Row> in, List<DocumentScore> scores, String fingerprint, boolean lps) {
    List<Row> out = new ArrayList<>(in.size());
    for (int i = 0; i < in.size(); i++) {
      Row r = in.get(i);
      Object[] score = ScoreColumns.values(scores.get(i), fingerprint, lps);
      Object[] values = new Object[r.length() + score.length];
      for (int c = 0; c < r.length(); c++) {
        values[c] = r.get(c);
      }
      System.arraycopy(score, 0, values, r.length(), score.length);
      out.add(RowFactory.create(values));
    }
    return out;
  }
}
