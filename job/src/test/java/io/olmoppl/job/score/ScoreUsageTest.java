package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.olmoppl.job.testing.SparkTestBase;
import io.olmoppl.testing.Refcases;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A window or stride the model cannot take is a bad command line: exit 2 before Spark starts. No
 * session is shared here, so the test sees whether the run started one.
 */
class ScoreUsageTest {
  @TempDir Path tmp;

  @Test
  void strideAboveTheModelsPositionsIsAUsageErrorBeforeSpark() throws Exception {
    String model = Refcases.dir("p01_olmo_tied_f32").toString(); // 256 positions
    Path in = Files.writeString(tmp.resolve("in.jsonl"), "{\"text\":\"hello\"}\n");
    String out = tmp.resolve("out").toString();
    for (String[] opts :
        new String[][] {{"--stride", "300"}, {"--window", "4096"}, {"--window", "100000"}}) {
      SparkTestBase.Cli r =
          SparkTestBase.cli(
              "score",
              "--model",
              model,
              "--input",
              in.toString(),
              "--output",
              out,
              opts[0],
              opts[1]);
      assertEquals(2, r.code(), r.err());
      assertTrue(r.err().contains(opts[0] + " " + opts[1]), r.err());
      assertTrue(SparkSession.getDefaultSession().isEmpty(), "no Spark session was started");
      assertTrue(Files.notExists(Path.of(out)));
    }
  }
}
