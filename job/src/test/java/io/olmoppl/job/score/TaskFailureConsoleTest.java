package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.olmoppl.job.testing.StandaloneCluster;
import io.olmoppl.testing.Refcases;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a user sees when a Spark task fails, as the launcher runs the CLI (its own JVM, with {@code
 * conf/log4j2.properties}): one error message and the name of a file with the trace on stderr; the
 * traces of Spark's own task reports in the log file, not on the console.
 */
class TaskFailureConsoleTest {
  @TempDir Path tmp;

  @Test
  void aFailedTaskLeavesNoTraceOnTheConsole() throws Exception {
    Path conf = Path.of(System.getProperty("user.dir")).resolveSibling("conf");
    assertTrue(Files.exists(conf.resolve("log4j2.properties")), conf.toString());
    Path logs = Files.createDirectories(tmp.resolve("logs"));
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx1g");
    cmd.addAll(StandaloneCluster.moduleOptions());
    cmd.addAll(
        List.of(
            "-Dai.djl.offline=true",
            "-Dlog4j2.configurationFile=" + conf.resolve("log4j2.properties"),
            "-Dolmoppl.log.dir=" + logs,
            "-cp",
            System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")),
            "io.olmoppl.job.Main",
            "score",
            "--model",
            Refcases.dir("p01_olmo_tied_f32").toString(),
            "--master",
            "local[2]",
            "--input",
            OutputSafetyTest.truncatedGz(tmp).toString(),
            "--input-format",
            "text",
            "--progress",
            "off",
            "--output",
            tmp.resolve("out").toString()));
    Path stderr = tmp.resolve("stderr.txt");
    Process p =
        new ProcessBuilder(cmd)
            .redirectOutput(tmp.resolve("stdout.txt").toFile())
            .redirectError(stderr.toFile())
            .start();
    assertTrue(p.waitFor(5, TimeUnit.MINUTES), "the run ends");
    String err = Files.readString(stderr);
    assertEquals(1, p.exitValue(), err);
    assertTrue(err.contains("olmo-ppl: error: ") && err.contains("EOFException"), err);
    assertTrue(err.contains("(the full trace is in " + logs.resolve("olmo-ppl-")), err);
    assertTrue(err.lines().noneMatch(l -> l.startsWith("\tat ") || l.startsWith("Caused by")), err);
    assertTrue(err.lines().count() <= 4, err);
    String spark =
        Files.readString(
            logs.resolve("olmo-ppl-" + System.getProperty("user.name") + "-spark.log"));
    assertTrue(spark.contains("Lost task") && spark.contains("\tat "), spark);
  }
}
