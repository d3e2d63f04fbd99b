package io.olmoppl.job.tools;

import io.olmoppl.checkpoint.CheckpointException;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.DType;
import io.olmoppl.checkpoint.Experts;
import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.checkpoint.writer.CheckpointMaker.OutputCopy;
import io.olmoppl.job.cli.Args;
import io.olmoppl.job.cli.BundledTokenizers;
import io.olmoppl.job.cli.Command;
import io.olmoppl.job.cli.UsageException;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;
import java.util.Set;

/**
 * {@code olmo-ppl make-checkpoint}: a random-initialised checkpoint in a real layout with the real
 * tokenizer. A developer command of the {@code ./olmo-ppl} launcher: it needs udf's checkpoint
 * writer ({@code io.olmoppl.checkpoint.writer}), which the spark-submit jar leaves out.
 */
public final class MakeCheckpointCommand implements Command {
  public static final String HELP =
      String.join(
          "\n",
          "usage: olmo-ppl make-checkpoint --layout olmo|hf_olmo|olmo2|olmo3|olmoe|flex_olmo --out DIR [options]",
          "",
          "  --hidden N (64)  --layers N (2)  --heads N (4)  --kv-heads N (= heads)  --intermediate N (2 x hidden)",
          "  --max-positions N (256)  --seed N (0)  --dtype F32|F16|BF16 (F32)",
          "  --tied | --untied       default: the layout's (hf_olmo tied, olmo and olmo2 untied)",
          "  --output-copy none|identical|different  for tied models: also store the output matrix under its own",
          "                          name (identical = an alias of the embedding; different = a conflicting copy)",
          "  --tokenizer neox|dolma2|PATH  default neox (OLMo-1) for olmo/hf_olmo/olmoe, dolma2 for"
              + " olmo2/olmo3/flex_olmo",
          "  olmo3: every fourth layer full attention, the others a sliding window of positions / 16 (at most",
          "  4096); YaRN factor 8 over positions / 8 on the full layers (Olmo-3-1025-7B at --max-positions 65536)",
          "  --experts N (4)  --top-k N (2)  --norm-topk-prob   olmoe and flex_olmo: experts per layer, per token,",
          "                          and whether the chosen experts' weights are divided by their sum",
          "",
          "The tokenizers bundled with olmo-ppl are allenai's OLMo tokenizer files (Apache-2.0).");

  public MakeCheckpointCommand() {}

  @Override
  public String name() {
    return "make-checkpoint";
  }

  @Override
  public String oneLine() {
    return "--layout olmo|hf_olmo|olmo2|olmo3|olmoe|flex_olmo --out DIR   write a random-initialised checkpoint";
  }

  @Override
  public String help() {
    return HELP;
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws IOException {
    run(argv, out);
    return 0;
  }

  public static void run(String[] argv, PrintStream out) throws IOException {
    Args a =
        Args.parse(
            "make-checkpoint",
            argv,
            1,
            Set.of(
                "layout",
                "out",
                "hidden",
                "layers",
                "heads",
                "kv-heads",
                "intermediate",
                "max-positions",
                "seed",
                "dtype",
                "output-copy",
                "tokenizer",
                "experts",
                "top-k"),
            Set.of("tied", "untied", "norm-topk-prob"));
    CheckpointLayout layout = CheckpointLayout.byId(a.require("layout"));
    if (layout == null) {
      throw new UsageException(
          "--layout must be olmo, hf_olmo, olmo2, olmo3, olmoe or flex_olmo, not '"
              + a.get("layout")
              + "'");
    }
    Path dir = Path.of(a.require("out"));
    if (Files.exists(dir) && !isEmptyDir(dir)) {
      throw new UsageException("--out " + dir + " exists and is not empty; choose a new directory");
    }
    if (a.flag("tied") && a.flag("untied")) {
      throw new UsageException("give --tied or --untied, not both");
    }
    boolean tied = a.flag("tied") || (!a.flag("untied") && layout == CheckpointLayout.HF_OLMO);
    int hidden = a.integer("hidden", 64);
    int heads = a.integer("heads", 4);
    DType dtype;
    OutputCopy copy;
    try {
      dtype = DType.valueOf(a.get("dtype", "F32").toUpperCase(Locale.ROOT));
      copy = OutputCopy.valueOf(a.get("output-copy", "none").toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new UsageException(
          "--dtype must be F32, F16 or BF16 and --output-copy none, identical or" + " different");
    }
    if (copy != OutputCopy.NONE && !tied) {
      throw new UsageException("--output-copy applies to tied checkpoints; add --tied");
    }
    String tok =
        a.get(
            "tokenizer",
            layout == CheckpointLayout.OLMO2
                    || layout == CheckpointLayout.OLMO3
                    || layout == CheckpointLayout.FLEX_OLMO
                ? "dolma2"
                : "neox");
    boolean moe = layout == CheckpointLayout.OLMOE || layout == CheckpointLayout.FLEX_OLMO;
    if (!moe && (a.get("experts") != null || a.get("top-k") != null || a.flag("norm-topk-prob"))) {
      throw new UsageException(
          "--experts, --top-k and --norm-topk-prob need --layout olmoe or flex_olmo");
    }
    Experts experts = null;
    if (moe) {
      try {
        experts =
            new Experts(a.integer("experts", 4), a.integer("top-k", 2), a.flag("norm-topk-prob"));
      } catch (CheckpointException e) {
        throw new UsageException(e.getMessage());
      }
    }
    CheckpointMaker maker =
        CheckpointMaker.small(layout)
            .withDims(
                hidden,
                a.integer("layers", 2),
                heads,
                a.integer("kv-heads", heads),
                a.integer("intermediate", 2 * hidden),
                a.integer("max-positions", 256))
            .withTied(tied, copy)
            .withDtype(dtype)
            .withSeed(a.integer("seed", 0))
            .withExperts(experts)
            .withVocabRows(
                tok.equals("dolma2") ? CheckpointMaker.DOLMA2_ROWS : CheckpointMaker.NEOX_ROWS);
    Path tmp = Files.createTempFile("olmo-ppl-tokenizer", ".json");
    try {
      try (InputStream in = BundledTokenizers.open(tok)) {
        Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
      }
      try {
        maker.write(dir, tmp);
      } catch (CheckpointException | IllegalArgumentException e) {
        throw new UsageException(e.getMessage());
      }
    } finally {
      Files.deleteIfExists(tmp);
    }
    out.println(
        "olmo-ppl: wrote a random "
            + layout.id()
            + " checkpoint ("
            + (tied ? "tied" : "untied")
            + ", "
            + dtype
            + ") to "
            + dir);
  }

  private static boolean isEmptyDir(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return false;
    }
    try (var s = Files.list(dir)) {
      return s.findAny().isEmpty();
    }
  }
}
