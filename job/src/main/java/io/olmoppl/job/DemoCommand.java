package io.olmoppl.job;

import io.olmoppl.job.tools.MakeCheckpointCommand;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Set;
import java.util.stream.Stream;

/**
 * {@code olmo-ppl demo}: writes a small random tied OLMo checkpoint (with the real OLMo tokenizer) and a bundled sample
 * dataset into {@code ./olmo-ppl-demo/}, scores it on in-process Spark and prints the summary. Re-running replaces the
 * demo directory.
 */
final class DemoCommand {
  static final String HELP = String.join("\n",
      "usage: olmo-ppl demo [--dir DIR] [--master URL]",
      "",
      "Makes DIR/checkpoint (random weights, so perplexities are huge: the demo shows the pipeline, not a",
      "language model), copies a sample dataset to DIR/input.jsonl, scores it into DIR/output (JSON lines and",
      "_summary.json). DIR defaults to ./olmo-ppl-demo and is replaced on each run.");
  private static final String MARKER = ".olmo-ppl-demo";

  private DemoCommand() {}

  static void run(String[] argv, PrintStream out) throws IOException {
    Args a = Args.parse("demo", argv, 1, Set.of("dir", "master"), Set.of());
    Path dir = Path.of(a.get("dir", "olmo-ppl-demo")).toAbsolutePath();
    if (Files.exists(dir)) {
      if (!Files.exists(dir.resolve(MARKER))) {
        throw new Args.UsageException(dir + " exists and was not made by 'olmo-ppl demo'; pass --dir NEW_DIR");
      }
      try (Stream<Path> s = Files.walk(dir)) {
        for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
          Files.delete(p);
        }
      }
    }
    Files.createDirectories(dir);
    Files.writeString(dir.resolve(MARKER), "made by olmo-ppl demo\n");
    Path ckpt = dir.resolve("checkpoint");
    MakeCheckpointCommand.run(new String[] {"make-checkpoint", "--layout", "hf_olmo", "--out", ckpt.toString(),
        "--hidden", "64", "--layers", "2", "--heads", "4", "--max-positions", "128", "--tied", "--output-copy",
        "identical", "--seed", "7"}, out);
    Path input = dir.resolve("input.jsonl");
    try (InputStream in = DemoCommand.class.getResourceAsStream("/io/olmoppl/demo/sample.jsonl")) {
      Files.copy(in, input);
    }
    out.println("olmo-ppl: scoring " + input + " (the checkpoint stores ff_out as an identical alias of wte: one"
        + " tied tensor)");
    ScoreCommand.main(new String[] {"score", "--model", ckpt.toString(), "--input", input.toString(), "--output",
        dir.resolve("output").toString(), "--output-format", "json", "--master", a.get("master", "local[2]")}, out);
  }
}
