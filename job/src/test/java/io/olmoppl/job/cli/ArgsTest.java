package io.olmoppl.job.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.olmoppl.job.score.Request;
import io.olmoppl.job.score.ScoreCommand;
import io.olmoppl.scoring.Bos;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Options come from the command line, then a --properties file, then spark.olmoppl.* Spark
 * configuration.
 */
class ArgsTest {
  @TempDir Path tmp;

  @AfterEach
  void clear() {
    System.clearProperty("spark.olmoppl.window");
    System.clearProperty("spark.olmoppl.bos");
    System.clearProperty("spark.olmoppl.token-logprobs");
  }

  private static Request parse(String... args) {
    String[] argv = new String[args.length + 1];
    argv[0] = "score";
    System.arraycopy(args, 0, argv, 1, args.length);
    return Request.from(Args.parse("score", argv, 1, ScoreCommand.OPTIONS, ScoreCommand.FLAGS));
  }

  @Test
  void precedenceCommandLineThenFileThenSparkConf() throws Exception {
    Path props = tmp.resolve("o.properties");
    Files.writeString(props, "window=64\nspark.olmoppl.bos=none\nmodel=/m\n");
    System.setProperty("spark.olmoppl.window", "16");
    System.setProperty("spark.olmoppl.bos", "eos");
    System.setProperty("spark.olmoppl.token-logprobs", "true");
    Request r =
        parse("--properties", props.toString(), "--input", "in", "--output", "out", "--window=128");
    assertEquals(128, r.options().window(), "command line wins");
    assertEquals(Bos.NONE, r.options().bos(), "file wins over Spark configuration");
    assertEquals("/m", r.model());
    assertTrue(r.options().tokenLogprobs(), "spark.olmoppl.* used when nothing else says");
  }

  @Test
  void unknownKeyInPropertiesFileIsRefused() throws Exception {
    Path props = tmp.resolve("bad.properties");
    Files.writeString(props, "windw=64\n");
    UsageException e =
        assertThrows(
            UsageException.class,
            () ->
                parse(
                    "--properties",
                    props.toString(),
                    "--model",
                    "m",
                    "--input",
                    "i",
                    "--output",
                    "o"));
    assertTrue(
        e.getMessage().contains("windw") && e.getMessage().contains(props.toString()),
        e.getMessage());
  }

  @Test
  void valuesAreValidatedWithTheOptionName() {
    assertTrue(
        assertThrows(
                UsageException.class,
                () ->
                    parse(
                        "--model", "m", "--input", "i", "--output", "o", "--batch-tokens", "lots"))
            .getMessage()
            .contains("--batch-tokens must be a whole number"));
    assertTrue(
        assertThrows(
                UsageException.class,
                () ->
                    parse("--model", "m", "--input", "i", "--output", "o", "--distribution", "p2p"))
            .getMessage()
            .contains("--distribution must be auto, files or broadcast"));
    assertTrue(
        assertThrows(UsageException.class, () -> parse("--input", "i", "--output", "o"))
            .getMessage()
            .contains("needs --model"));
    assertTrue(
        assertThrows(
                UsageException.class,
                () ->
                    parse(
                        "--model", "m", "--input", "i", "--output", "o", "--token-logprobs=maybe"))
            .getMessage()
            .contains("--token-logprobs is a flag"));
  }
}
