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
 * Executor-side counters of model loads, reported in the summary. Loads happen once per JVM, so a retried task does
 * not double-count them; document counts are informational only (the summary's totals come from the output rows).
 */
public final class ScoreMetrics implements Serializable {
  private static final long serialVersionUID = 1L;
  private final LongAccumulator modelLoads;
  private final CollectionAccumulator<String> loads;

  private ScoreMetrics(LongAccumulator modelLoads, CollectionAccumulator<String> loads) {
    this.modelLoads = modelLoads;
    this.loads = loads;
  }

  /** Registers the accumulators on the driver. */
  public static ScoreMetrics register(SparkContext sc) {
    return new ScoreMetrics(sc.longAccumulator("olmo-ppl model loads"),
        sc.collectionAccumulator("olmo-ppl executor loads"));
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
      loads.add(exec + "\t" + host + "\t" + ProcessHandle.current().pid() + "\t" + lease.loaded().loadSeconds()
          + "\t" + lease.loaded().bytesReceived());
    }
  }

  public long modelLoads() {
    return modelLoads.value();
  }

  /** @return one tab-separated line per load: executor id, host, pid, seconds, bytes */
  public List<String> loads() {
    return loads.value();
  }
}
