package io.olmoppl.spark;

import org.apache.spark.SparkEnv;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * libtorch's intra-op thread pool is per process, while Spark runs several tasks per executor: each task gets
 * executor cores / concurrent task slots threads (= {@code spark.task.cpus}), so the tasks together use the
 * executor's cores without oversubscription. A user setting ({@code ai.djl.pytorch.num_threads} or {@code
 * OMP_NUM_THREADS}, which Spark itself sets to {@code spark.task.cpus} in executors it launches) wins.
 */
final class Threads {
  private static final Logger LOG = LoggerFactory.getLogger(Threads.class);
  private static volatile boolean done;

  private Threads() {}

  static synchronized void configureOnce() {
    if (done) {
      return;
    }
    done = true;
    if (System.getProperty("ai.djl.pytorch.num_threads") != null || System.getenv("OMP_NUM_THREADS") != null
        || SparkEnv.get() == null) {
      return;
    }
    var conf = SparkEnv.get().conf();
    int cores = executorCores(conf);
    int taskCpus = conf.getInt("spark.task.cpus", 1);
    int slots = Math.max(1, cores / Math.max(1, taskCpus));
    int threads = Math.max(1, cores / slots);
    io.olmoppl.model.OlmoModel.engine(); // make sure the engine (and its JNI) is loaded first
    ai.djl.pytorch.jni.JniUtils.setNumThreads(threads);
    LOG.info("olmo-ppl: {} executor cores, {} task slots: libtorch uses {} thread(s) per task", cores, slots,
        threads);
  }

  private static int executorCores(org.apache.spark.SparkConf conf) {
    String master = conf.get("spark.master", "");
    java.util.regex.Matcher lc = java.util.regex.Pattern.compile("local-cluster\\[\\s*\\d+\\s*,\\s*(\\d+)")
        .matcher(master);
    if (lc.find()) {
      return Integer.parseInt(lc.group(1));
    }
    if (master.startsWith("local")) {
      java.util.regex.Matcher m = java.util.regex.Pattern.compile("local\\[(\\d+|\\*)").matcher(master);
      if (m.find()) {
        return m.group(1).equals("*") ? java.lang.Runtime.getRuntime().availableProcessors()
            : Integer.parseInt(m.group(1));
      }
      return 1;
    }
    return conf.getInt("spark.executor.cores", java.lang.Runtime.getRuntime().availableProcessors());
  }
}
