package io.olmoppl.spark;

import java.io.Serializable;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.List;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkEnv;
import org.apache.spark.util.CollectionAccumulator;
import org.apache.spark.util.LongAccumulator;

/**
 * Executor-side counters of model loads, reported in the summary. Loads happen once per JVM, so a
 * retried task does not double-count them. The documents, tokens and UTF-8 bytes scored feed the
 * progress display (Spark sends a running task's accumulator values with each executor heartbeat
 * and the final ones at task end); they are informational only (the summary's totals come from the
 * output rows).
 */
public final class ScoreMetrics implements Serializable {
  private static final long serialVersionUID = 1L;
  private final LongAccumulator modelLoads;
  private final CollectionAccumulator<String> loads;
  private final LongAccumulator documents;
  private final LongAccumulator tokens;
  private final LongAccumulator bytes;

  private ScoreMetrics(SparkContext sc) {
    this.modelLoads = sc.longAccumulator("olmo-ppl model loads");
    this.loads = sc.collectionAccumulator("olmo-ppl executor loads");
    this.documents = sc.longAccumulator("olmo-ppl documents scored");
    this.tokens = sc.longAccumulator("olmo-ppl tokens scored");
    this.bytes = sc.longAccumulator("olmo-ppl bytes scored");
  }

  /** Registers the accumulators on the driver. */
  public static ScoreMetrics register(SparkContext sc) {
    return new ScoreMetrics(sc);
  }

  /**
   * Counts what one forward batch scored of a task's documents (executor side, called on the
   * engine's compute thread after each batch, see {@link io.olmoppl.batching.BatchProgress}): the
   * documents it completed, the targets it scored, the UTF-8 bytes of those documents. A running
   * task's values reach the driver with the next executor heartbeat, so the progress line moves per
   * batch, not per chunk of documents.
   */
  public synchronized void recordBatch(long documentsDone, long tokensScored, long bytesDone) {
    documents.add(documentsDone);
    tokens.add(tokensScored);
    bytes.add(bytesDone);
  }

  /**
   * @return documents, tokens and bytes counted so far (on an executor: this task's; on the driver:
   *     the merged values of finished tasks)
   */
  public long[] progress() {
    return new long[] {documents.value(), tokens.value(), bytes.value()};
  }

  /**
   * @return the accumulator ids of documents, tokens and bytes scored, for a listener reading task
   *     updates
   */
  public long[] progressIds() {
    return new long[] {documents.id(), tokens.id(), bytes.id()};
  }

  void recordLease(ExecutorModels.Lease lease) {
    if (lease.built()) {
      modelLoads.add(1);
      String exec = SparkEnv.get() == null ? "?" : SparkEnv.get().executorId();
      String host;
      try {
        host = InetAddress.getLocalHost().getHostName();
      } catch (UnknownHostException e) {
        host = "?";
      }
      loads.add(
          exec
              + "\t"
              + host
              + "\t"
              + ProcessHandle.current().pid()
              + "\t"
              + lease.loaded().loadSeconds()
              + "\t"
              + lease.loaded().bytesReceived());
    }
  }

  public long modelLoads() {
    return modelLoads.value();
  }

  /**
   * @return one tab-separated line per load: executor id, host, pid, seconds, bytes
   */
  public List<String> loads() {
    return loads.value();
  }
}
