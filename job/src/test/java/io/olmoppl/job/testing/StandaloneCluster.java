package io.olmoppl.job.testing;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A real Spark standalone cluster on 127.0.0.1: a Master and Workers as separate {@code java}
 * processes from a SPARK_HOME assembled from Spark's Maven jars (RELEASE + jars/, empty conf/).
 * Every process it starts, and their descendants (executors), is stopped by pid on {@link
 * #close()}.
 */
public final class StandaloneCluster implements AutoCloseable {
  public final Path sparkHome;
  public final Path logs;
  final int masterPort;
  private final List<Process> processes = new ArrayList<>();

  public StandaloneCluster(Path sparkHome, Path logs) throws IOException {
    this.sparkHome = sparkHome;
    this.logs = Files.createDirectories(logs);
    Files.writeString(
        sparkHome.resolve("RELEASE"), "Spark 4.2.0 assembled from Maven jars for olmo-ppl tests\n");
    Files.createDirectories(sparkHome.resolve("conf"));
    this.masterPort = freePort();
  }

  public String masterUrl() {
    return "spark://127.0.0.1:" + masterPort;
  }

  /**
   * Starts the Master and {@code workers} Workers of one core each and waits until they registered.
   */
  public void start(int workers, String workerMemory) throws Exception {
    Process master =
        spawn(
            "master",
            List.of("-Xmx256m"),
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            String.valueOf(masterPort),
            "--webui-port",
            String.valueOf(freePort()));
    waitFor(
        master, logs.resolve("master.log"), "I have been elected leader", Duration.ofSeconds(90));
    for (int i = 0; i < workers; i++) {
      Path work = Files.createDirectories(sparkHome.resolve("work"));
      Process w =
          spawn(
              "worker" + i,
              List.of("-Xmx256m"),
              "org.apache.spark.deploy.worker.Worker",
              "--host",
              "127.0.0.1",
              "--port",
              String.valueOf(freePort()),
              "--webui-port",
              String.valueOf(freePort()),
              "--cores",
              "1",
              "--memory",
              workerMemory,
              "--work-dir",
              work.toString(),
              masterUrl());
      waitFor(
          w,
          logs.resolve("worker" + i + ".log"),
          "Successfully registered with master",
          Duration.ofSeconds(90));
    }
  }

  /** Runs {@code SparkSubmit} in client mode; @return its exit code (output in logs/NAME.log) */
  public int submit(String name, List<String> args, Duration timeout) throws Exception {
    return await(name, submitAsync(name, args), timeout);
  }

  /** Starts {@code SparkSubmit} in client mode without waiting (output in logs/NAME.log). */
  public Process submitAsync(String name, List<String> args) throws IOException {
    List<String> a = new ArrayList<>(List.of("--master", masterUrl(), "--deploy-mode", "client"));
    a.addAll(args);
    return spawn(
        name, List.of("-Xmx1g"), "org.apache.spark.deploy.SparkSubmit", a.toArray(String[]::new));
  }

  /** Waits for a submitted driver; @return its exit code */
  public int await(String name, Process p, Duration timeout) throws Exception {
    if (!p.waitFor(timeout.toSeconds(), java.util.concurrent.TimeUnit.SECONDS)) {
      kill(p);
      throw new AssertionError(
          name + " did not finish in " + timeout + "; log: " + tail(logs.resolve(name + ".log")));
    }
    return p.exitValue();
  }

  /**
   * @return the executor JVMs the Workers run now
   */
  public List<ProcessHandle> executors() {
    return processes.stream()
        .flatMap(Process::descendants)
        .filter(
            h ->
                h.isAlive()
                    && h.info().commandLine().orElse("").contains("CoarseGrainedExecutorBackend"))
        .toList();
  }

  public long pidOf(String name) {
    return processes.stream()
        .filter(p -> p.info().arguments().map(x -> String.join(" ", x)).orElse("").contains(name))
        .mapToLong(Process::pid)
        .findFirst()
        .orElse(-1);
  }

  private Process spawn(String name, List<String> jvm, String mainClass, String... args)
      throws IOException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(jvm);
    cmd.addAll(moduleOptions());
    cmd.add("-cp");
    cmd.add(sparkHome.resolve("conf") + ":" + sparkHome.resolve("jars") + "/*");
    cmd.add(mainClass);
    cmd.addAll(List.of(args));
    ProcessBuilder pb =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(logs.resolve(name + ".log").toFile());
    Map<String, String> env = pb.environment();
    env.put("SPARK_HOME", sparkHome.toString());
    env.put("SPARK_SCALA_VERSION", "2.13");
    env.put("SPARK_LOCAL_IP", "127.0.0.1");
    env.remove("SPARK_CONF_DIR");
    Process p = pb.start();
    processes.add(p);
    return p;
  }

  /** Spark's --add-opens list, as this test JVM got it from Maven. */
  public static List<String> moduleOptions() {
    return ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
        .filter(
            a ->
                a.startsWith("--add-opens")
                    || a.startsWith("--add-modules")
                    || a.startsWith("-XX:+Ignore")
                    || a.startsWith("-Dio.netty")
                    || a.startsWith("-Djdk.reflect"))
        .toList();
  }

  private static void waitFor(Process p, Path log, String line, Duration timeout) throws Exception {
    long end = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < end) {
      if (Files.exists(log) && Files.readString(log).contains(line)) {
        return;
      }
      if (!p.isAlive()) {
        throw new AssertionError("process exited before '" + line + "': " + tail(log));
      }
      Thread.sleep(250);
    }
    throw new AssertionError("no '" + line + "' within " + timeout + ": " + tail(log));
  }

  public static String tail(Path log) throws IOException {
    if (!Files.exists(log)) {
      return "(no log)";
    }
    String s = Files.readString(log);
    return s.length() > 6000 ? s.substring(s.length() - 6000) : s;
  }

  public static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
      return s.getLocalPort();
    }
  }

  private static void kill(Process p) {
    p.descendants().forEach(ProcessHandle::destroyForcibly);
    p.destroy();
    try {
      if (!p.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) {
        p.destroyForcibly();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      p.destroyForcibly();
    }
  }

  @Override
  public void close() {
    for (int i = processes.size() - 1; i >= 0; i--) {
      kill(processes.get(i));
    }
  }
}
