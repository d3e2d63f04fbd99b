package io.olmoppl.job.report;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.job.testing.SparkTestBase;
import io.olmoppl.testing.Refcases;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a user sees besides the scores: the progress line, the report (summary statistics, histogram
 * PNG, HTML), buckets from percentile cut-offs and from an earlier run's cut-offs, per-group
 * aggregates, filtering into kept and rejected rows. Expected values are recomputed here from the
 * written rows in plain Java.
 */
class AnalysisTest extends SparkTestBase {
  static final String MODEL = Refcases.dir("p04_olmo_untied_gqa_f16").toString();
  static final String[] SOURCES = {"web", "books", "code"};
  @TempDir static Path tmp;
  static Path input;
  static Path out;
  static Path rejected;
  static Cli first;
  static JsonObject summary;
  static List<JsonObject> kept;
  static List<JsonObject> rejectedRows;
  static int inputRows;

  @BeforeAll
  static void scoreOnce() throws Exception {
    input = tmp.resolve("in.jsonl");
    List<String> lines = new ArrayList<>();
    String[] words =
        "the of and to in a is that for it as was with be by on not he this are".split(" ");
    java.util.Random rnd = new java.util.Random(7);
    for (int i = 0; i < 14; i++) {
      StringBuilder t = new StringBuilder();
      for (int w = 0, n = 3 + rnd.nextInt(30); w < n; w++) {
        t.append(w == 0 ? "" : " ").append(words[rnd.nextInt(words.length)]);
      }
      lines.add(row(i, SOURCES[i % 3], t.toString()));
    }
    lines.add(row(100, "web", ""));
    // text the report must escape, and one longer than an example's excerpt
    lines.add(row(200, "web", "the <b>of</b> & \\\"and\\\" to in a is <script>x</script>"));
    StringBuilder longText = new StringBuilder("the");
    for (int w = 0; w < 150; w++) {
      longText.append(' ').append(words[rnd.nextInt(words.length)]);
    }
    lines.add(row(201, "books", longText.toString()));
    lines.add("{\"id\": 101, \"source\": \"books\", \"text\": null}");
    inputRows = lines.size();
    Files.write(input, lines);
    out = tmp.resolve("out");
    rejected = tmp.resolve("rejected");
    first =
        scoreCli(
            MODEL,
            input,
            out,
            "--output-format",
            "json",
            "--buckets",
            "head:30,middle:60,tail",
            "--group-by",
            "source",
            "--keep-bucket",
            "head",
            "--rejected",
            rejected.toString(),
            "--progress",
            "log");
    assertEquals(0, first.code(), first.err());
    summary =
        JsonParser.parseString(Files.readString(out.resolve("_summary.json"))).getAsJsonObject();
    kept = readJsonLines(out);
    rejectedRows = readJsonLines(rejected);
  }

  static String row(int id, String source, String text) {
    return "{\"id\": " + id + ", \"source\": \"" + source + "\", \"text\": \"" + text + "\"}";
  }

  static List<JsonObject> all() {
    List<JsonObject> a = new ArrayList<>(kept);
    a.addAll(rejectedRows);
    return a;
  }

  static List<Double> okPerplexities() {
    List<Double> p = new ArrayList<>();
    for (JsonObject r : all()) {
      if (r.get("ppl_status").getAsString().equals("ok")) {
        p.add(r.get("perplexity").getAsDouble());
      }
    }
    p.sort(null);
    return p;
  }

  @Test
  void progressEndsWithEveryDocumentAndToken() {
    long tokens = 0;
    for (JsonObject r : all()) {
      tokens += r.get("ppl_tokens").getAsLong();
    }
    String last =
        first
            .err()
            .lines()
            .filter(l -> l.contains("olmo-ppl: ") && l.contains(" documents, "))
            .reduce((a, b) -> b)
            .orElse("");
    assertTrue(
        last.contains(
            inputRows
                + "/"
                + inputRows
                + " documents, "
                + String.format("%,d", tokens)
                + " tokens"),
        first.err());
    assertTrue(last.contains("100.0%") && last.contains("done"), last);
  }

  @Test
  void progressLineRateAndEta() {
    // a quarter of the bytes in 10 s: 30 s to go; 400 tokens in 10 s: 40 tokens/s
    String l = Progress.format(5, 400, 250, 20, 1000, 10);
    assertEquals(
        "olmo-ppl: 5/20 documents, 400 tokens, 40 tokens/s, 25.0%, ETA 0:00:30, 0:00:10 elapsed",
        l);
    assertTrue(Progress.format(0, 0, 0, 20, 1000, 0).contains("ETA --:--:--"));
    assertEquals("1:01:01", Progress.clock(3661));
  }

  @Test
  void filterKeepsHeadAndRejectsTheRestWithoutLosingARow() {
    assertEquals(inputRows, kept.size() + rejectedRows.size());
    Set<String> ids = new HashSet<>();
    all().forEach(r -> ids.add(r.get("id").getAsString()));
    assertEquals(inputRows, ids.size(), "every input row is in exactly one of the outputs");
    kept.forEach(r -> assertEquals("head", r.get("ppl_bucket").getAsString()));
    for (JsonObject r : rejectedRows) {
      assertTrue(
          r.get("ppl_bucket").isJsonNull() || !r.get("ppl_bucket").getAsString().equals("head"));
    }
    assertTrue(
        rejectedRows.stream().anyMatch(r -> r.get("ppl_status").getAsString().equals("null_text")));
    JsonObject f = summary.getAsJsonObject("filter");
    assertEquals(kept.size(), f.get("kept").getAsLong());
    assertEquals(rejectedRows.size(), f.get("rejected").getAsLong());
  }

  @Test
  void bucketsFollowTheirCutoffs() {
    JsonObject b = summary.getAsJsonObject("buckets");
    assertEquals(Buckets.RELATIVE_ERROR, b.get("relative_error").getAsDouble());
    JsonArray c = b.getAsJsonArray("cutoffs");
    double head = c.get(0).getAsJsonObject().get("max_perplexity").getAsDouble();
    double middle = c.get(1).getAsJsonObject().get("max_perplexity").getAsDouble();
    assertTrue(c.get(2).getAsJsonObject().get("max_perplexity").isJsonNull());
    List<Double> ppl = okPerplexities();
    // approxQuantile returns a document's value whose rank is within relative_error * n of the
    // percentile
    assertTrue(ppl.contains(head) && ppl.contains(middle));
    assertRank(ppl, head, 0.30);
    assertRank(ppl, middle, 0.60);
    Map<String, Integer> counts = new HashMap<>();
    for (JsonObject r : all()) {
      String bucket = r.get("ppl_bucket").isJsonNull() ? "none" : r.get("ppl_bucket").getAsString();
      counts.merge(bucket, 1, Integer::sum);
      if (r.get("perplexity").isJsonNull()) {
        assertEquals("none", bucket);
      } else {
        double p = r.get("perplexity").getAsDouble();
        assertEquals(p <= head ? "head" : p <= middle ? "middle" : "tail", bucket);
      }
    }
    JsonObject docs = b.getAsJsonObject("documents");
    counts.forEach((k, v) -> assertEquals(v.longValue(), docs.get(k).getAsLong(), k));
  }

  static void assertRank(List<Double> sorted, double value, double p) {
    int n = sorted.size();
    int rank = sorted.indexOf(value) + 1; // 1-based rank of the value among the ok documents
    assertTrue(
        Math.abs(rank - p * n) <= Buckets.RELATIVE_ERROR * n + 1,
        "rank " + rank + " of " + n + " for p" + p);
  }

  @Test
  void summaryHasPercentilesHistogramAndDerivedPerplexities() {
    List<Double> ppl = okPerplexities();
    assertEquals(ppl.size(), summary.get("documents_ok").getAsLong());
    JsonObject pct = summary.getAsJsonObject("percentiles");
    double previous = 0;
    for (double p : Analysis.PERCENTILES) {
      double v = pct.get("p" + (int) p).getAsDouble();
      assertTrue(ppl.contains(v) && v >= previous, "p" + p + " = " + v);
      assertRank(ppl, v, p / 100);
      previous = v;
    }
    JsonObject h = summary.getAsJsonObject("histogram");
    long[] counts = new long[Analysis.BINS];
    double lo = h.get("min").getAsDouble();
    double w = h.get("bin_width").getAsDouble();
    for (double p : ppl) {
      counts[Math.min(Analysis.BINS - 1, (int) Math.floor((Math.log10(p) - lo) / w))]++;
    }
    long[] written = new long[Analysis.BINS];
    for (int i = 0; i < written.length; i++) {
      written[i] = h.getAsJsonArray("counts").get(i).getAsLong();
    }
    assertArrayEquals(counts, written);
    assertEquals(
        Math.pow(2, summary.get("bits_per_byte").getAsDouble()),
        summary.get("byte_perplexity").getAsDouble(),
        1e-9);
    JsonObject t = summary.getAsJsonObject("timings");
    assertTrue(
        t.get("total_seconds").getAsDouble() >= t.get("score_and_write_seconds").getAsDouble());
    assertEquals("fp32", summary.getAsJsonObject("options").get("precision").getAsString());
  }

  @Test
  void groupsAreMicroAveragesOfTheirRows() {
    JsonObject g = summary.getAsJsonObject("groups");
    assertEquals("source", g.get("column").getAsString());
    assertEquals(3, g.get("total").getAsLong());
    Map<String, double[]> sums = new HashMap<>(); // documents, tokens, nll, bytes
    for (JsonObject r : all()) {
      double[] s = sums.computeIfAbsent(r.get("source").getAsString(), k -> new double[4]);
      s[0]++;
      if (r.get("ppl_status").getAsString().equals("ok")) {
        s[1] += r.get("ppl_tokens").getAsLong();
        s[2] += r.get("ppl_nll").getAsDouble();
        s[3] += r.get("text").getAsString().getBytes(StandardCharsets.UTF_8).length;
      }
    }
    for (var e : g.getAsJsonArray("rows")) {
      JsonObject row = e.getAsJsonObject();
      double[] s = sums.get(row.get("group").getAsString());
      assertEquals((long) s[0], row.get("documents").getAsLong());
      assertEquals((long) s[1], row.get("tokens").getAsLong());
      assertEquals(
          Math.exp(s[2] / s[1]), row.get("perplexity").getAsDouble(), 1e-9 * Math.exp(s[2] / s[1]));
      assertEquals(s[2] / (s[3] * Math.log(2)), row.get("bits_per_byte").getAsDouble(), 1e-9);
    }
  }

  @Test
  void reportEmbedsAHistogramPngThatDecodes() throws Exception {
    byte[] png = Files.readAllBytes(out.resolve(Report.PNG));
    BufferedImage img = ImageIO.read(new ByteArrayInputStream(png));
    assertNotNull(img, "the PNG decodes");
    assertEquals(800, img.getWidth());
    assertEquals(400, img.getHeight());
    String html = Files.readString(out.resolve(Report.HTML));
    Matcher m =
        Pattern.compile("<img [^>]*src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\"").matcher(html);
    assertTrue(m.find(), "the HTML embeds the PNG");
    assertArrayEquals(png, Base64.getDecoder().decode(m.group(1)));
    assertTrue(html.contains("href=\"" + Report.PNG + "\""), "and links the file next to it");
    assertFalse(
        html.contains("http://") || html.contains("https://") || html.contains("<script"),
        "offline");
    assertTrue(html.contains(summary.getAsJsonObject("model").get("fingerprint").getAsString()));
    assertTrue(html.contains("By source") && html.contains(">books<"));
  }

  /** The example lists of the summary, by name (lowest, highest, ...). */
  static List<JsonObject> examples(JsonArray a) {
    List<JsonObject> l = new ArrayList<>();
    a.forEach(e -> l.add(e.getAsJsonObject()));
    return l;
  }

  static List<Double> ppls(List<JsonObject> l) {
    return l.stream().map(e -> e.get("perplexity").getAsDouble()).toList();
  }

  /** Checks that an example is a written row, cut to the excerpt length. */
  static void assertIsARow(JsonObject e) {
    String text = e.get("text").getAsString();
    boolean found = false;
    for (JsonObject r : all()) {
      if (!r.get("perplexity").isJsonNull()
          && r.get("perplexity").getAsDouble() == e.get("perplexity").getAsDouble()) {
        String full = r.get("text").getAsString();
        found |=
            text.equals(full.substring(0, Math.min(300, full.length())))
                && e.get("truncated").getAsBoolean() == full.length() > 300
                && e.get("bucket").getAsString().equals(r.get("ppl_bucket").getAsString())
                && e.get("group").getAsString().equals(r.get("source").getAsString())
                && e.get("tokens").getAsLong() == r.get("ppl_tokens").getAsLong();
      }
    }
    assertTrue(found, "an example is a written row: " + e);
  }

  @Test
  void examplesAreTheEdgesTheBucketsAndTheNeighboursOfEachCutoff() {
    JsonObject ex = summary.getAsJsonObject("examples");
    assertEquals(3, ex.get("per_list").getAsInt());
    List<Double> ppl = okPerplexities(); // ascending, from the written rows
    List<JsonObject> lowest = examples(ex.getAsJsonArray("lowest"));
    List<JsonObject> highest = examples(ex.getAsJsonArray("highest"));
    assertEquals(ppl.subList(0, 3), ppls(lowest));
    List<Double> top = new ArrayList<>(ppl.subList(ppl.size() - 3, ppl.size()));
    java.util.Collections.reverse(top);
    assertEquals(top, ppls(highest));
    List<JsonObject> every = new ArrayList<>(lowest);
    every.addAll(highest);
    Map<String, Integer> perBucket = new HashMap<>();
    for (JsonObject r : all()) {
      if (!r.get("ppl_bucket").isJsonNull()) {
        perBucket.merge(r.get("ppl_bucket").getAsString(), 1, Integer::sum);
      }
    }
    JsonArray samples = ex.getAsJsonArray("samples");
    assertEquals(3, samples.size());
    for (var s : samples) {
      String bucket = s.getAsJsonObject().get("bucket").getAsString();
      List<JsonObject> docs = examples(s.getAsJsonObject().getAsJsonArray("documents"));
      assertEquals(Math.min(3, perBucket.getOrDefault(bucket, 0)), docs.size(), bucket);
      docs.forEach(d -> assertEquals(bucket, d.get("bucket").getAsString()));
      every.addAll(docs);
    }
    JsonArray cut = ex.getAsJsonArray("cutoffs");
    JsonArray cutoffs = summary.getAsJsonObject("buckets").getAsJsonArray("cutoffs");
    assertEquals(2, cut.size());
    for (int i = 0; i < 2; i++) {
      JsonObject c = cut.get(i).getAsJsonObject();
      double max = cutoffs.get(i).getAsJsonObject().get("max_perplexity").getAsDouble();
      assertEquals(max, c.get("max_perplexity").getAsDouble());
      List<Double> below = ppl.stream().filter(p -> p <= max).toList();
      List<Double> above = ppl.stream().filter(p -> p > max).toList();
      assertEquals(
          below.subList(Math.max(0, below.size() - 3), below.size()),
          ppls(examples(c.getAsJsonArray("below"))));
      assertEquals(
          above.subList(0, Math.min(3, above.size())), ppls(examples(c.getAsJsonArray("above"))));
      every.addAll(examples(c.getAsJsonArray("below")));
      every.addAll(examples(c.getAsJsonArray("above")));
    }
    every.forEach(AnalysisTest::assertIsARow);
  }

  @Test
  void reportShowsTheExamplesEscaped() throws Exception {
    String html = Files.readString(out.resolve(Report.HTML));
    for (String h :
        List.of(
            "Example documents",
            "Lowest perplexity",
            "Highest perplexity",
            "Bucket head: a sample",
            "Bucket middle: a sample",
            "Bucket tail: a sample",
            "Next to the cut-off between head and middle",
            "Next to the cut-off between middle and tail")) {
      assertTrue(html.contains(h), h);
    }
    JsonObject ex = summary.getAsJsonObject("examples");
    List<JsonObject> every = new ArrayList<>(examples(ex.getAsJsonArray("lowest")));
    every.addAll(examples(ex.getAsJsonArray("highest")));
    for (JsonObject e : every) {
      String text = e.get("text").getAsString();
      assertTrue(
          html.contains(
              ">" + Report.esc(text) + (e.get("truncated").getAsBoolean() ? "&hellip;" : "") + "<"),
          text);
    }
    assertFalse(html.contains("<script"), "document text never becomes markup");
    assertFalse(html.contains("<b>of</b>"));
  }

  @Test
  void exampleTextIsEscapedInTheReport() {
    ScoreSummary.Example e =
        new ScoreSummary.Example(
            "7", "web", 12.5, 4, "head", "<script>alert(1)</script> & \"q\"", true);
    StringBuilder b = new StringBuilder();
    ReportExamples.append(
        b,
        new ScoreSummary.Examples(
            1,
            300,
            List.of(e),
            List.of(e),
            List.of(new ScoreSummary.Sample("<head>", List.of(e))),
            List.of()));
    String html = b.toString();
    assertFalse(html.contains("<script") || html.contains("<head>"), html);
    assertTrue(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;&hellip;"), html);
    assertTrue(html.contains("Bucket &lt;head&gt;: a sample"), html);
    assertTrue(html.contains("perplexity <b>12.5</b> &middot; 4 tokens"), html);
  }

  @Test
  void numbersHaveOneFormatPerQuantity() {
    assertEquals("163.24", Numbers.perplexity(163.2412));
    assertEquals("1,253.4", Numbers.perplexity(1253.44));
    assertEquals("567,300", Numbers.perplexity(567304.9));
    assertEquals("8,350,600", Numbers.perplexity(8.35057e6));
    assertEquals("1.0412", Numbers.perplexity(1.04123));
    assertEquals("163.2", Numbers.perplexity(163.2));
    assertEquals("n/a", Numbers.perplexity(null));
    assertEquals("122,381", Numbers.count(122381L));
    assertEquals("1.8720", Numbers.bitsPerByte(1.87201));
    assertEquals("12.3", Numbers.seconds(12.34));
    assertEquals("1,235", Numbers.rate(1234.6));
    Map<String, Long> st = new java.util.LinkedHashMap<>();
    st.put("ok", 1382L);
    st.put("null_text", 1L);
    assertEquals("ok 1,382, null_text 1", Numbers.statuses(st));
    assertEquals(
        "input_embedding + output_projection: wte.weight, ff_out.weight",
        Numbers.tiedGroups(
            List.of(
                new ScoreSummary.TiedGroup(
                    List.of("input_embedding", "output_projection"),
                    List.of("wte.weight", "ff_out.weight")))));
    assertEquals("none (untied)", Numbers.tiedGroups(List.of()));
  }

  @Test
  void reportPrintsReadableListsAndATransposedPercentileTable() throws Exception {
    String html = Files.readString(out.resolve(Report.HTML));
    assertFalse(
        html.contains("{ok=") || html.contains("[{roles") || html.contains("roles="),
        "no toString");
    JsonObject st = summary.getAsJsonObject("status");
    assertTrue(
        Pattern.compile(
                "<th>status</th><td class=\"l\">[^<]*\\bok "
                    + Pattern.quote(String.format("%,d", st.get("ok").getAsLong()))
                    + "[,<]")
            .matcher(html)
            .find(),
        "status list");
    for (double p : Analysis.PERCENTILES) {
      String k = "p" + (int) p;
      double v = summary.getAsJsonObject("percentiles").get(k).getAsDouble();
      assertTrue(
          html.contains(
              "<tr><td>" + k + "</td><td class=\"n\">" + Numbers.perplexity(v) + "</td></tr>"),
          "one row per percentile: " + k);
    }
    assertTrue(
        html.contains(
            "<th>perplexity</th><td class=\"l\">"
                + Numbers.perplexity(summary.get("perplexity").getAsDouble())
                + "<"));
  }

  @Test
  void cutoffsOfAnEarlierRunLabelNewDataTheSameWay() throws Exception {
    Path again = tmp.resolve("again");
    double max = okPerplexities().get(okPerplexities().size() / 2);
    Cli r =
        scoreCli(
            MODEL,
            input,
            again,
            "--output-format",
            "json",
            "--cutoffs",
            out.resolve("_summary.json").toString(),
            "--max-perplexity",
            String.valueOf(max),
            "--progress",
            "off");
    assertEquals(0, r.code(), r.err());
    Map<String, String> before = new HashMap<>();
    Map<String, Double> pplBefore = new HashMap<>();
    all()
        .forEach(
            x -> {
              before.put(
                  x.get("id").getAsString(),
                  x.get("ppl_bucket").isJsonNull() ? null : x.get("ppl_bucket").getAsString());
              if (!x.get("perplexity").isJsonNull()) {
                pplBefore.put(x.get("id").getAsString(), x.get("perplexity").getAsDouble());
              }
            });
    List<Double> cuts = new ArrayList<>();
    for (var c : summary.getAsJsonObject("buckets").getAsJsonArray("cutoffs")) {
      if (!c.getAsJsonObject().get("max_perplexity").isJsonNull()) {
        cuts.add(c.getAsJsonObject().get("max_perplexity").getAsDouble());
      }
    }
    List<JsonObject> rows = readJsonLines(again);
    int atACutoff = 0;
    for (JsonObject x : rows) {
      assertTrue(x.get("perplexity").getAsDouble() <= max);
      double p = pplBefore.get(x.get("id").getAsString());
      // a cut-off is a document's own perplexity: scored again in other batches (float32
      // rounding, Refcases.BATCH_REL_NLL of its NLL) that document may fall on either side of it
      double bound = p * Refcases.BATCH_REL_NLL * Math.max(1, Math.log(p));
      if (cuts.stream().anyMatch(c -> Math.abs(c - p) <= bound)) {
        atACutoff++;
        continue;
      }
      assertEquals(before.get(x.get("id").getAsString()), x.get("ppl_bucket").getAsString());
    }
    assertTrue(atACutoff <= cuts.size(), atACutoff + " documents at the cut-offs " + cuts);
    JsonObject s =
        JsonParser.parseString(Files.readString(again.resolve("_summary.json"))).getAsJsonObject();
    assertEquals(
        out.resolve("_summary.json").toString(),
        s.getAsJsonObject("buckets").get("source").getAsString());
    JsonObject f = s.getAsJsonObject("filter");
    assertEquals(rows.size(), f.get("kept").getAsLong());
    assertEquals(inputRows - rows.size(), f.get("rejected").getAsLong());
    assertTrue(f.get("rejected_path").isJsonNull());
    assertFalse(r.err().contains(" documents, "), "--progress off prints no progress");
  }

  @Test
  void badAnalysisOptionsFailBeforeScoring() {
    String in = input.toString();
    Path o = tmp.resolve("never");
    assertEquals(
        2,
        cli(
                "score",
                "--model",
                MODEL,
                "--input",
                in,
                "--output",
                o.toString(),
                "--keep-bucket",
                "head")
            .code());
    assertEquals(
        2,
        cli(
                "score",
                "--model",
                MODEL,
                "--input",
                in,
                "--output",
                o.toString(),
                "--buckets",
                "head:30")
            .code());
    assertEquals(
        2,
        cli(
                "score",
                "--model",
                MODEL,
                "--input",
                in,
                "--output",
                o.toString(),
                "--buckets",
                "head:60,mid:30,tail")
            .code());
    assertEquals(
        2,
        cli(
                "score",
                "--model",
                MODEL,
                "--input",
                in,
                "--output",
                o.toString(),
                "--buckets",
                "head:30,tail",
                "--keep-bucket",
                "middle")
            .code());
    Cli g =
        cli(
            "score",
            "--model",
            MODEL,
            "--input",
            in,
            "--output",
            o.toString(),
            "--group-by",
            "domain");
    assertEquals(1, g.code());
    assertTrue(
        g.err().contains("'domain' is not in the input") && g.err().contains("source"), g.err());
    Cli c =
        cli(
            "score",
            "--model",
            MODEL,
            "--input",
            in,
            "--output",
            o.toString(),
            "--cutoffs",
            tmp.resolve("none.json").toString());
    assertEquals(1, c.code());
    assertTrue(c.err().contains("--cutoffs") && c.err().contains("does not exist"), c.err());
    assertFalse(Files.exists(o));
  }

  @Test
  void bucketSpecParses() {
    Buckets.Spec s = Buckets.Spec.parse("head:30, middle:60,tail");
    assertEquals(List.of("head", "middle", "tail"), s.names());
    assertArrayEquals(new double[] {30, 60}, s.percentiles());
  }

  @Test
  void inspectPrintsAnAlignedTable() {
    Cli r = cli("inspect", "--model", Refcases.dir("p02_hfolmo_tied_ffout_alias_bf16").toString());
    assertEquals(0, r.code(), r.err());
    List<String> lines = r.out().lines().toList();
    int col = lines.get(0).indexOf(Refcases.dir("p02_hfolmo_tied_ffout_alias_bf16").toString());
    assertTrue(col > 0);
    for (String l : lines) {
      assertTrue(
          l.charAt(col - 1) == ' ' && l.charAt(col) != ' ', "values start in one column: " + l);
    }
    assertTrue(
        r.out().contains("tied group") && r.out().contains("model.transformer.ff_out.weight"));
    assertTrue(lines.stream().anyMatch(l -> l.startsWith("bytes BF16 ")));
  }
}
