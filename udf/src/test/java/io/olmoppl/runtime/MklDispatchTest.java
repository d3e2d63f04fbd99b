package io.olmoppl.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.sun.jna.NativeLibrary;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MklDispatchTest {
  @TempDir Path tmp;

  @Test
  void readsTheFirstProcessorsVendorAndFlags() throws Exception {
    Path cpuinfo = tmp.resolve("cpuinfo");
    Files.writeString(
        cpuinfo,
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2 avx512f avx512bw\n\n"
            + "processor\t: 1\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2\n");
    MklDispatch.Cpu cpu = MklDispatch.Cpu.read(cpuinfo);
    assertEquals("AuthenticAMD", cpu.vendor());
    assertEquals(Set.of("fpu", "avx2", "avx512f", "avx512bw"), cpu.flags());
  }

  private static final MklDispatch.Cpu ZEN5 =
      new MklDispatch.Cpu(
          "AuthenticAMD",
          Set.of(
              "avx",
              "avx2",
              "fma",
              "f16c",
              "bmi1",
              "bmi2",
              "abm",
              "movbe",
              "avx512f",
              "avx512cd",
              "avx512bw",
              "avx512dq",
              "avx512vl"));
  private static final MklDispatch.Cpu ZEN3 =
      new MklDispatch.Cpu(
          "AuthenticAMD",
          Set.of("sse4_2", "avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "abm", "movbe"));

  @Test
  void anAmdCpuWithAvx2AndFmaGetsMklsIntelAvx2Path() {
    MklDispatch.Decision d = MklDispatch.decide(ZEN3, null, true, true);
    assertTrue(d.intelPath());
    assertEquals(
        "AVX2 (AMD CPU with AVX2 and FMA, no AVX-512; MKL told it runs on an Intel CPU)",
        d.description());
    // its own switch turns it off, the AVX-512 one does not
    assertFalse(MklDispatch.decide(ZEN3, null, true, false).intelPath());
    assertTrue(MklDispatch.decide(ZEN3, null, false, true).intelPath());
    // without FMA (a pre-Zen AMD CPU with AVX only): MKL's own choice
    MklDispatch.Cpu noFma = new MklDispatch.Cpu("AuthenticAMD", Set.of("avx", "avx2"));
    assertFalse(MklDispatch.decide(noFma, null, true, true).intelPath());
  }

  @Test
  void theReportedPathFollowsMklsOwnInstructionCap() {
    assertEquals(
        "AVX-512 (AMD CPU with AVX-512; MKL told it runs on an Intel CPU)",
        MklDispatch.decide(ZEN5, null, true, true).description());
    // the way to reproduce an AVX2-only CPU on an AVX-512 one
    assertEquals(
        "AVX2 (AMD CPU with AVX-512, MKL_ENABLE_INSTRUCTIONS=AVX2; MKL told it runs on an Intel CPU)",
        MklDispatch.decide(ZEN5, "AVX2", true, true).description());
    assertTrue(MklDispatch.decide(ZEN5, "AVX512", true, true).description().startsWith("AVX-512 "));
    assertFalse(MklDispatch.decide(ZEN5, "AVX2", false, true).intelPath());
    MklDispatch.Cpu intel = new MklDispatch.Cpu("GenuineIntel", ZEN5.flags());
    assertEquals(
        "MKL's own choice (GenuineIntel CPU)",
        MklDispatch.decide(intel, null, true, true).description());
    // the cap is named on every CPU, so a bench figure says which kernels it measured
    assertEquals(
        "MKL's own choice (GenuineIntel CPU, MKL_ENABLE_INSTRUCTIONS=AVX2)",
        MklDispatch.decide(intel, "AVX2", true, true).description());
  }

  @Test
  void theBundledLibraryAnswersThatTheCpuIsIntels() throws Exception {
    assumeTrue(linuxX86());
    Path lib = tmp.resolve("lib.so");
    try (InputStream in = MklDispatch.class.getResourceAsStream(MklDispatch.RESOURCE)) {
      Files.copy(in, lib);
    }
    NativeLibrary l = NativeLibrary.getInstance(lib.toString());
    assertEquals(1, l.getFunction("mkl_serv_intel_cpu_true").invokeInt(new Object[0]));
  }

  /**
   * On an AMD CPU with AVX-512, or with AVX2 and FMA, the process-wide definition MKL's call binds
   * to is the project's.
   */
  @Test
  void onAnAmdCpuWithAvx512OrAvx2TheDefinitionIsGlobalBeforeLibtorchLoads() throws Exception {
    assumeTrue(linuxX86());
    MklDispatch.Cpu cpu = MklDispatch.Cpu.read(Path.of("/proc/cpuinfo"));
    boolean has512 = cpu.flags().containsAll(MklDispatch.AVX512_FLAGS);
    assumeTrue(
        cpu.vendor().equals("AuthenticAMD")
            && (has512 || cpu.flags().containsAll(MklDispatch.AVX2_FLAGS)),
        "not an AMD CPU with AVX-512 or AVX2");
    String property = has512 ? "olmoppl.mkl.avx512" : "olmoppl.mkl.avx2";
    assumeTrue(
        Boolean.parseBoolean(
            System.getProperty(property, has512 ? "true" : MklDispatch.AVX2_DEFAULT)),
        property + "=false");
    DjlSettings.configure();
    String choice = MklDispatch.select();
    assertTrue(choice.endsWith("MKL told it runs on an Intel CPU)"), choice);
    assertTrue(MklDispatch.intelPath(), choice);
    // dlsym(RTLD_DEFAULT): the global scope, searched before libtorch's own definition
    assertEquals(
        1,
        NativeLibrary.getProcess().getFunction("mkl_serv_intel_cpu_true").invokeInt(new Object[0]));
  }

  private static boolean linuxX86() {
    return System.getProperty("os.name").toLowerCase().contains("linux")
        && System.getProperty("os.arch").matches("amd64|x86_64");
  }
}
