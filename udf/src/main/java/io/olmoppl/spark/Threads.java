package io.olmoppl.spark;

import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How many intra-op threads the executor's engine gives libtorch: all of the executor's cores,
 * since one compute thread runs every forward pass while the tasks only tokenize and convert rows
 * (a partition holding the only long document then still uses every core). A user setting ({@code
 * ai.djl.pytorch.num_threads} or {@code OMP_NUM_THREADS}) wins; note that Spark sets {@code
 * OMP_NUM_THREADS} to {@code spark.task.cpus} in the executors it launches unless {@code
 * spark.executorEnv.OMP_NUM_THREADS} is given, so that variable is only honoured where it differs
 * from {@code spark.task.cpus}.
 */
final class Threads {
  private static final Logger LOG = LoggerFactory.getLogger(Threads.class);

  private Threads() {}

  /**
   * @return the engine's thread count, or 0 to leave libtorch's own setting
   */
  static int engineThreads() {
    if (System.getProperty("ai.djl.pytorch.num_threads") != null) {
      return 0;
    }
    SparkEnv env = SparkEnv.get();
    if (env == null) {
      return 0;
    }
    SparkConf conf = env.conf();
    String omp = System.getenv("OMP_NUM_THREADS");
    if (omp != null && !omp.equals(conf.get("spark.task.cpus", "1"))) {
      return 0;
    }
    int threads = executorCores(conf);
    LOG.info(
        "olmo-ppl: {} executor cores: the scoring engine runs libtorch with {} thread(s)",
        threads,
        threads);
    return threads;
  }

  private static int executorCores(SparkConf conf) {
    String master = conf.get("spark.master", "");
    java.util.regex.Matcher lc =
        java.util.regex.Pattern.compile("local-cluster\\[\\s*\\d+\\s*,\\s*(\\d+)").matcher(master);
    if (lc.find()) {
      return Integer.parseInt(lc.group(1));
    }
    if (master.startsWith("local")) {
      java.util.regex.Matcher m =
          java.util.regex.Pattern.compile("local\\[(\\d+|\\*)").matcher(master);
      if (m.find()) {
        return m.group(1).equals("*")
            ? java.lang.Runtime.getRuntime().availableProcessors()
            : Integer.parseInt(m.group(1));
      }
      return 1;
    }
    return conf.getInt(
        "spark.executor.cores", java.lang.Runtime.getRuntime().availableProcessors());
  }
}
