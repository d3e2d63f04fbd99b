package io.olmoppl.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.checkpoint.writer.CheckpointMaker.OutputCopy;
import io.olmoppl.checkpoint.writer.SafetensorsWriter.Tensor;
import io.olmoppl.runtime.DjlSettings;
import io.olmoppl.testing.Refcases;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A whole forward pass in plain {@code double}, written from the public references (allenai/OLMo
 * {@code olmo/model.py} for hf_olmo, transformers {@code modeling_olmo.py} and {@code
 * modeling_olmo2.py}) and spelling the tensor names out itself, on the weights a {@link
 * CheckpointMaker} wrote, compared per token with {@link OlmoModel#logProbs}.
 */
class ForwardReferenceTest {
  private static final double TOL = 1e-4;

  /** A fixed sequence: 13 tokens, 12 targets; ids below both tokenizers' sizes, one repeated. */
  private static final long[] TOKENS = {
    50279, 510, 3158, 8516, 30013, 689, 253, 22658, 4370, 15, 187, 510, 49000
  };

  @TempDir static Path tmp;

  @BeforeAll
  static void configure() {
    DjlSettings.configure();
  }

  static Stream<Arguments> cases() {
    CheckpointMaker olmo =
        CheckpointMaker.small(CheckpointLayout.OLMO)
            .withDims(16, 2, 4, 2, 24, 64)
            .withVocabRows(CheckpointMaker.NEOX_ROWS);
    CheckpointMaker hf =
        CheckpointMaker.small(CheckpointLayout.HF_OLMO)
            .withDims(16, 2, 4, 2, 24, 64)
            .withVocabRows(CheckpointMaker.NEOX_ROWS);
    CheckpointMaker olmo2 =
        CheckpointMaker.small(CheckpointLayout.OLMO2)
            .withDims(16, 2, 4, 2, 24, 64)
            .withVocabRows(CheckpointMaker.DOLMA2_ROWS);
    return Stream.of(
        Arguments.of("olmo_gqa_untied", olmo.withSeed(101), null),
        Arguments.of(
            "olmo_tied_d8",
            olmo.withDims(32, 1, 4, 4, 40, 64).withTied(true, OutputCopy.NONE).withSeed(102),
            null),
        Arguments.of("hf_olmo_gqa_tied", hf.withSeed(103), null),
        Arguments.of("hf_olmo_untied", hf.withTied(false, OutputCopy.NONE).withSeed(104), null),
        Arguments.of("hf_olmo_clip_qkv", hf.withSeed(105), 0.5),
        Arguments.of("olmo2_gqa_untied", olmo2.withSeed(106), null));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void logProbsMatchDoubleReference(String name, CheckpointMaker maker, Double clipQkv)
      throws Exception {
    Path dir = tmp.resolve(name);
    maker.write(
        dir,
        maker.layout() == CheckpointLayout.OLMO2
            ? Refcases.dolma2Tokenizer()
            : Refcases.neoxTokenizer());
    if (clipQkv != null) {
      Path cfg = dir.resolve("config.json");
      JsonObject j = JsonParser.parseString(Files.readString(cfg)).getAsJsonObject();
      j.addProperty("clip_qkv", clipQkv);
      Files.writeString(cfg, j.toString());
    }
    Reference ref = new Reference(maker, clipQkv);
    double[] want = ref.logProbs(TOKENS);
    assertEquals(TOKENS.length - 1, want.length);
    long[] shortTokens = java.util.Arrays.copyOf(TOKENS, 6);
    double[] wantShort = ref.logProbs(shortTokens);

    Checkpoint ckpt = Checkpoint.open(dir, TyingRule.STRICT);
    assertEquals(maker.tied(), ckpt.tying().tied(), name + ": tying");
    try (OlmoModel model = OlmoModel.load(ckpt, ckpt, Device.cpu(), Precision.FP32);
        NDManager bm = model.newBatchManager()) {
      float[][] got = model.logProbs(bm, List.of(new Window(TOKENS, 0)));
      assertClose(want, got[0], 0, name + " full window");

      // two windows of different lengths in one padded batch, one scoring only its tail
      float[][] two =
          model.logProbs(bm, List.of(new Window(shortTokens, 0), new Window(TOKENS, 7)));
      assertClose(wantShort, two[0], 0, name + " short row of a padded batch");
      assertClose(want, two[1], 7, name + " tail of the long row");
    }
    if (clipQkv != null) {
      // the clip must bite on this input, or the case proves nothing
      double[] unclipped = new Reference(maker, null).logProbs(TOKENS);
      double maxDiff = 0;
      for (int i = 0; i < want.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(unclipped[i] - want[i]));
      }
      assertTrue(maxDiff > 1e-2, "clip_qkv " + clipQkv + " must change the scores of this input");
    }
  }

  /** Compares want[from..] with got (got holds only the scored tail). */
  private static void assertClose(double[] want, float[] got, int from, String what) {
    assertEquals(want.length - from, got.length, what + ": scored positions");
    for (int i = 0; i < got.length; i++) {
      double w = want[from + i];
      assertTrue(
          Math.abs(w - got[i]) <= TOL,
          what + ": target " + (from + i) + " log p " + got[i] + " vs double reference " + w);
    }
  }

  /** The double forward pass over the maker's tensors (for F32 exactly the stored values). */
  static final class Reference {
    final CheckpointLayout layout;
    final int c;
    final int layers;
    final int h;
    final int kv;
    final int d;
    final int inter;
    final int vocab;
    final boolean tied;
    final double theta;
    final double eps;
    final Double clip;
    final Map<String, float[]> w = new HashMap<>();

    Reference(CheckpointMaker m, Double clip) {
      this.layout = m.layout();
      this.c = m.hidden();
      this.layers = m.layers();
      this.h = m.heads();
      this.kv = m.kvHeads();
      this.d = c / h;
      this.inter = m.intermediate();
      this.vocab = m.vocabRows();
      this.tied = m.tied();
      this.theta = layout == CheckpointLayout.OLMO2 ? 500000.0 : 10000.0;
      this.eps = layout == CheckpointLayout.OLMO2 ? 1e-6 : 1e-5;
      this.clip = clip;
      for (Tensor t : m.tensors()) {
        w.put(t.name(), t.values());
      }
    }

    /**
     * @return log p(tokens[j+1] | tokens[0..j]) for j = 0..T-2
     */
    double[] logProbs(long[] tokens) {
      int t = tokens.length - 1; // inputs
      String emb = layout.embedding();
      float[] e = w.get(emb);
      double[][] x = new double[t][c];
      for (int p = 0; p < t; p++) {
        for (int i = 0; i < c; i++) {
          x[p][i] = e[(int) tokens[p] * c + i];
        }
      }
      int kvd = kv * d;
      for (int l = 0; l < layers; l++) {
        double[][] q;
        double[][] k;
        double[][] v;
        if (layout == CheckpointLayout.HF_OLMO) {
          String pre = "model.transformer.blocks." + l + ".";
          double[][] qkv =
              linear(layerNorm(x), w.get(pre + "att_proj.weight"), c + 2 * kvd); // rows [Q | K | V]
          clip(qkv);
          q = cols(qkv, 0, c);
          k = cols(qkv, c, kvd);
          v = cols(qkv, c + kvd, kvd);
        } else {
          String pre = "model.layers." + l + ".self_attn.";
          double[][] in =
              layout == CheckpointLayout.OLMO2 ? x : layerNorm(x); // OLMo-2 has no pre-norm
          q = linear(in, w.get(pre + "q_proj.weight"), c);
          k = linear(in, w.get(pre + "k_proj.weight"), kvd);
          v = linear(in, w.get(pre + "v_proj.weight"), kvd);
          clip(q);
          clip(k);
          clip(v);
          if (layout == CheckpointLayout.OLMO2) { // QK-norm over the full projected width
            q = rmsNorm(q, w.get(pre + "q_norm.weight"));
            k = rmsNorm(k, w.get(pre + "k_norm.weight"));
          }
        }
        q = rope(q, h);
        k = rope(k, kv);
        double[][] att = attention(q, k, v);
        double[][] a =
            linear(
                att,
                w.get(
                    layout == CheckpointLayout.HF_OLMO
                        ? "model.transformer.blocks." + l + ".attn_out.weight"
                        : "model.layers." + l + ".self_attn.o_proj.weight"),
                c);
        if (layout == CheckpointLayout.OLMO2) {
          a = rmsNorm(a, w.get("model.layers." + l + ".post_attention_layernorm.weight"));
        }
        x = add(x, a);
        double[][] up;
        double[][] gate;
        double[][] fin = layout == CheckpointLayout.OLMO2 ? x : layerNorm(x);
        if (layout == CheckpointLayout.HF_OLMO) {
          double[][] u =
              linear(fin, w.get("model.transformer.blocks." + l + ".ff_proj.weight"), 2 * inter);
          up = cols(u, 0, inter); // "x, gate = x.chunk(2, dim=-1)": first half is the value
          gate = cols(u, inter, inter);
        } else {
          up = linear(fin, w.get("model.layers." + l + ".mlp.up_proj.weight"), inter);
          gate = linear(fin, w.get("model.layers." + l + ".mlp.gate_proj.weight"), inter);
        }
        double[][] act = new double[t][inter];
        for (int p = 0; p < t; p++) {
          for (int i = 0; i < inter; i++) {
            double g = gate[p][i];
            act[p][i] = g / (1 + Math.exp(-g)) * up[p][i]; // silu(gate) * up
          }
        }
        double[][] f =
            linear(
                act,
                w.get(
                    layout == CheckpointLayout.HF_OLMO
                        ? "model.transformer.blocks." + l + ".ff_out.weight"
                        : "model.layers." + l + ".mlp.down_proj.weight"),
                c);
        if (layout == CheckpointLayout.OLMO2) {
          f = rmsNorm(f, w.get("model.layers." + l + ".post_feedforward_layernorm.weight"));
        }
        x = add(x, f);
      }
      x = layout == CheckpointLayout.OLMO2 ? rmsNorm(x, w.get("model.norm.weight")) : layerNorm(x);
      float[] out = tied ? e : w.get(layout.output());
      double[] lp = new double[t];
      for (int p = 0; p < t; p++) {
        double[] logits = new double[vocab]; // the full embedding width, padding rows included
        double max = Double.NEGATIVE_INFINITY;
        for (int r = 0; r < vocab; r++) {
          double s = 0;
          for (int i = 0; i < c; i++) {
            s += x[p][i] * out[r * c + i];
          }
          logits[r] = s;
          max = Math.max(max, s);
        }
        double z = 0;
        for (double lg : logits) {
          z += Math.exp(lg - max);
        }
        lp[p] = logits[(int) tokens[p + 1]] - max - Math.log(z);
      }
      return lp;
    }

    private void clip(double[][] a) {
      if (clip == null) {
        return;
      }
      for (double[] row : a) {
        for (int i = 0; i < row.length; i++) {
          row[i] = Math.max(-clip, Math.min(clip, row[i]));
        }
      }
    }

    /** y = x W^T with W stored [out, in]. */
    private static double[][] linear(double[][] x, float[] wt, int out) {
      int in = x[0].length;
      assertEquals((long) out * in, wt.length, "weight size");
      double[][] y = new double[x.length][out];
      for (int p = 0; p < x.length; p++) {
        for (int o = 0; o < out; o++) {
          double s = 0;
          for (int i = 0; i < in; i++) {
            s += x[p][i] * wt[o * in + i];
          }
          y[p][o] = s;
        }
      }
      return y;
    }

    private static double[][] cols(double[][] a, int from, int n) {
      double[][] y = new double[a.length][];
      for (int p = 0; p < a.length; p++) {
        y[p] = java.util.Arrays.copyOfRange(a[p], from, from + n);
      }
      return y;
    }

    private static double[][] add(double[][] a, double[][] b) {
      double[][] y = new double[a.length][a[0].length];
      for (int p = 0; p < a.length; p++) {
        for (int i = 0; i < a[0].length; i++) {
          y[p][i] = a[p][i] + b[p][i];
        }
      }
      return y;
    }

    private double[][] layerNorm(double[][] x) {
      double[][] y = new double[x.length][];
      for (int p = 0; p < x.length; p++) {
        int n = x[p].length;
        double mean = 0;
        for (double v : x[p]) {
          mean += v;
        }
        mean /= n;
        double var = 0;
        for (double v : x[p]) {
          var += (v - mean) * (v - mean);
        }
        var /= n;
        y[p] = new double[n];
        for (int i = 0; i < n; i++) {
          y[p][i] = (x[p][i] - mean) / Math.sqrt(var + eps);
        }
      }
      return y;
    }

    private double[][] rmsNorm(double[][] x, float[] weight) {
      double[][] y = new double[x.length][];
      for (int p = 0; p < x.length; p++) {
        int n = x[p].length;
        double ms = 0;
        for (double v : x[p]) {
          ms += v * v;
        }
        ms /= n;
        y[p] = new double[n];
        for (int i = 0; i < n; i++) {
          y[p][i] = weight[i] * x[p][i] / Math.sqrt(ms + eps);
        }
      }
      return y;
    }

    /** NeoX rotate-half on each head of a (T, heads * D) activation. */
    private double[][] rope(double[][] a, int heads) {
      double[][] y = new double[a.length][a[0].length];
      int half = d / 2;
      for (int p = 0; p < a.length; p++) {
        for (int hh = 0; hh < heads; hh++) {
          int o = hh * d;
          for (int j = 0; j < half; j++) {
            double angle = p * Math.pow(theta, -2.0 * j / d);
            double cs = Math.cos(angle);
            double sn = Math.sin(angle);
            y[p][o + j] = a[p][o + j] * cs - a[p][o + j + half] * sn;
            y[p][o + j + half] = a[p][o + j + half] * cs + a[p][o + j] * sn;
          }
        }
      }
      return y;
    }

    /** Causal GQA: query head j uses kv head j / (H/K); scale 1/sqrt(D). @return (T, H*D) */
    private double[][] attention(double[][] q, double[][] k, double[][] v) {
      int t = q.length;
      double[][] y = new double[t][h * d];
      int group = h / kv;
      for (int hh = 0; hh < h; hh++) {
        int kh = hh / group;
        for (int i = 0; i < t; i++) {
          double[] s = new double[i + 1];
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j <= i; j++) {
            double dot = 0;
            for (int x = 0; x < d; x++) {
              dot += q[i][hh * d + x] * k[j][kh * d + x];
            }
            s[j] = dot / Math.sqrt(d);
            max = Math.max(max, s[j]);
          }
          double z = 0;
          for (int j = 0; j <= i; j++) {
            s[j] = Math.exp(s[j] - max);
            z += s[j];
          }
          for (int j = 0; j <= i; j++) {
            for (int x = 0; x < d; x++) {
              y[i][hh * d + x] += s[j] / z * v[j][kh * d + x];
            }
          }
        }
      }
      return y;
    }
  }
}
