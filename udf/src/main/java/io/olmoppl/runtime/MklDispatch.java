package io.olmoppl.runtime;

import com.sun.jna.Library;
import com.sun.jna.NativeLibrary;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Lets MKL (libtorch's CPU matmul) use its Intel code paths on AMD CPUs: its AVX-512 kernels where
 * the CPU has AVX-512, and its Intel AVX2 kernels where it has AVX2 and FMA only.
 *
 * <p>MKL runs a slower code path of its own on any CPU it does not identify as Intel's, whatever
 * that CPU supports; on an AMD Zen 5 with AVX-512 that halves the fp32 matmul rate (measured by
 * {@code olmo-ppl bench}: 122 against 197 GFLOP/s at 2048³ on 2 cores); on an AVX2-only AMD CPU its
 * Intel AVX2 path is faster too (see {@link #AVX2_DEFAULT}). MKL asks one function, {@code
 * mkl_serv_intel_cpu_true}, and libtorch exports it, so a library that defines it and is loaded
 * with {@code RTLD_GLOBAL} before libtorch is the definition libtorch binds to. The jar carries
 * that library (source: {@code udf/src/main/native/mkl_intel_cpu.c}, built by {@code
 * scripts/build-native}); MKL then chooses kernels from the CPU's feature flags alone (and {@code
 * MKL_ENABLE_INSTRUCTIONS}, its own cap). No maintained library on Maven Central provides this,
 * hence the project's own 13 KB one.
 *
 * <p>Done only on Linux x86-64 AMD CPUs that report every AVX-512 subset MKL's AVX-512 kernels use,
 * or AVX2, FMA and the rest of MKL's AVX2 path ({@code -Dolmoppl.mkl.avx2=false} leaves those to
 * MKL), and only before libtorch is loaded ({@link DjlSettings#configure} calls it). Set the system
 * property {@code olmoppl.mkl.avx512} to {@code false} to leave MKL's own choice on CPUs with
 * AVX-512.
 */
public final class MklDispatch {
  private static final Logger LOG = LoggerFactory.getLogger(MklDispatch.class);
  static final String RESOURCE = "linux-x86-64/libolmoppl_mkl_intel_cpu.so";

  /** How {@link #select()}'s words begin where MKL was left to its own choice. */
  public static final String OWN_CHOICE = "MKL's own choice";

  /** The AVX-512 subsets of MKL's AVX-512 ("Skylake server") code path. */
  static final List<String> AVX512_FLAGS =
      List.of("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl");

  /** What MKL's AVX2 ("Haswell") code path uses beyond SSE and AVX. */
  static final List<String> AVX2_FLAGS =
      List.of("avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "abm", "movbe");

  /**
   * The default of olmoppl.mkl.avx2 (AMD CPUs with AVX2 but not AVX-512): on. Measured (README "On
   * a real AVX2-only AMD CPU"): on a 2-vCPU Zen 3 EPYC, MKL's own path and this one alternating,
   * three pairs, best to best 1.29x at 2048³, 1.14x on the long document, 1.34x on the short mix;
   * at the AVX2 cap on a 2-vCPU Xeon, MKL's non-Intel path ran at 24.8-25.5 GFLOP/s against
   * 72.0-73.3 for its Intel AVX2 path.
   */
  static final String AVX2_DEFAULT = "true";

  // dlfcn.h on Linux
  private static final int RTLD_NOW = 0x2;
  private static final int RTLD_GLOBAL = 0x100;
  private static final int RTLD_NODELETE = 0x1000;

  private static String choice;
  private static boolean intelPath; // whether MKL was told it runs on an Intel CPU
  private static NativeLibrary loaded; // held: the definition must outlive every MKL call

  private MklDispatch() {}

  /**
   * @return whether this process's MKL runs its Intel code path because olmo-ppl told it it runs on
   *     an Intel CPU (so MKL's own choice differs); selects first if not done yet
   */
  public static synchronized boolean intelPath() {
    select();
    return intelPath;
  }

  /**
   * Idempotent.
   *
   * @return what MKL was left to choose, in words (also reported by {@code olmo-ppl bench})
   */
  public static synchronized String select() {
    if (choice == null) {
      choice = decide();
      LOG.debug("olmo-ppl: MKL code path: {}", choice);
    }
    return choice;
  }

  private static String decide() {
    String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
    String arch = System.getProperty("os.arch", "");
    if (!os.contains("linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
      return OWN_CHOICE + " (not Linux x86-64)";
    }
    Cpu cpu;
    try {
      cpu = Cpu.read(Path.of("/proc/cpuinfo"));
    } catch (IOException e) {
      return OWN_CHOICE + " (/proc/cpuinfo unreadable: " + e.getMessage() + ")";
    }
    Decision d =
        decide(
            cpu,
            System.getenv("MKL_ENABLE_INSTRUCTIONS"),
            Boolean.parseBoolean(System.getProperty("olmoppl.mkl.avx512", "true")),
            Boolean.parseBoolean(System.getProperty("olmoppl.mkl.avx2", AVX2_DEFAULT)));
    if (!d.intelPath()) {
      return d.description();
    }
    if (libtorchLoaded()) {
      return OWN_CHOICE + " (libtorch was loaded before olmo-ppl could select MKL's Intel path)";
    }
    Path lib = null;
    try {
      lib = Files.createTempFile("olmoppl-mkl-intel-cpu", ".so");
      try (InputStream in = MklDispatch.class.getResourceAsStream(RESOURCE)) {
        if (in == null) {
          return OWN_CHOICE + " (" + RESOURCE + " missing from the jar)";
        }
        Files.copy(in, lib, StandardCopyOption.REPLACE_EXISTING);
      }
      loaded =
          NativeLibrary.getInstance(
              lib.toString(),
              Map.of(Library.OPTION_OPEN_FLAGS, RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE));
      intelPath = true;
      return d.description();
    } catch (IOException | UnsatisfiedLinkError | RuntimeException e) {
      return OWN_CHOICE + " (loading " + RESOURCE + " failed: " + e.getMessage() + ")";
    } finally {
      // a loaded library stays mapped after its file is gone; deleting it now rather than at exit
      // leaves nothing behind in the temp folder when a JVM is killed (as Spark kills executors)
      if (lib != null) {
        try {
          Files.deleteIfExists(lib);
        } catch (IOException e) {
          lib.toFile().deleteOnExit();
        }
      }
    }
  }

  /**
   * Whether MKL should be told it runs on an Intel CPU, and the code path MKL then takes, in words.
   *
   * @param mklEnable MKL_ENABLE_INSTRUCTIONS (MKL's own cap on the instruction set), or null
   * @param avx512 olmoppl.mkl.avx512: the switch on AMD CPUs with AVX-512
   * @param avx2 olmoppl.mkl.avx2: the switch on AMD CPUs with AVX2 and FMA but not AVX-512
   */
  static Decision decide(Cpu cpu, String mklEnable, boolean avx512, boolean avx2) {
    // MKL_ENABLE_INSTRUCTIONS caps what MKL dispatches to, whatever the CPU has
    String cap = mklEnable == null ? "" : mklEnable.trim().toUpperCase(Locale.ROOT);
    String capped = cap.isEmpty() ? "" : ", MKL_ENABLE_INSTRUCTIONS=" + mklEnable.trim();
    if (!"AuthenticAMD".equals(cpu.vendor())) {
      return new Decision(false, OWN_CHOICE + " (" + cpu.vendor() + " CPU" + capped + ")");
    }
    boolean has512 = cpu.flags().containsAll(AVX512_FLAGS);
    if (!has512 && !cpu.flags().containsAll(AVX2_FLAGS)) {
      return new Decision(false, OWN_CHOICE + " (AMD CPU without AVX2 and FMA)");
    }
    String cpuKind = has512 ? "AMD CPU with AVX-512" : "AMD CPU with AVX2 and FMA, no AVX-512";
    String property = has512 ? "olmoppl.mkl.avx512" : "olmoppl.mkl.avx2";
    if (!(has512 ? avx512 : avx2)) {
      return new Decision(false, OWN_CHOICE + " (" + cpuKind + "; " + property + "=false)");
    }
    boolean capBelow512 = !cap.isEmpty() && !cap.startsWith("AVX512") && !cap.startsWith("AVX10");
    String kernels =
        has512 && !capBelow512 ? "AVX-512" : capBelow512 && !cap.equals("AVX2") ? cap : "AVX2";
    return new Decision(
        true, kernels + " (" + cpuKind + capped + "; MKL told it runs on an Intel CPU)");
  }

  /** What {@link #decide(Cpu, String, boolean, boolean)} chose. */
  record Decision(boolean intelPath, String description) {}

  private static boolean libtorchLoaded() {
    try {
      return Files.readAllLines(Path.of("/proc/self/maps")).stream()
          .anyMatch(l -> l.endsWith("/libtorch_cpu.so"));
    } catch (IOException e) {
      return false;
    }
  }

  /** The vendor and feature flags of the first processor in a {@code /proc/cpuinfo} listing. */
  record Cpu(String vendor, Set<String> flags) {
    static Cpu read(Path cpuinfo) throws IOException {
      String vendor = "unknown";
      Set<String> flags = new HashSet<>();
      for (String line : Files.readAllLines(cpuinfo)) {
        int colon = line.indexOf(':');
        if (colon < 0) {
          continue;
        }
        String key = line.substring(0, colon).trim();
        String value = line.substring(colon + 1).trim();
        if (key.equals("vendor_id") && vendor.equals("unknown")) {
          vendor = value;
        } else if (key.equals("flags") && flags.isEmpty()) {
          flags.addAll(Arrays.asList(value.split("\\s+")));
        }
      }
      return new Cpu(vendor, flags);
    }
  }
}
