package io.olmoppl.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
   * On an AMD CPU with AVX-512 the process-wide definition MKL's call binds to is the project's.
   */
  @Test
  void onAnAmdCpuWithAvx512TheDefinitionIsGlobalBeforeLibtorchLoads() throws Exception {
    assumeTrue(linuxX86());
    MklDispatch.Cpu cpu = MklDispatch.Cpu.read(Path.of("/proc/cpuinfo"));
    assumeTrue(
        cpu.vendor().equals("AuthenticAMD") && cpu.flags().containsAll(MklDispatch.AVX512_FLAGS),
        "not an AMD CPU with AVX-512");
    assumeTrue(
        Boolean.parseBoolean(System.getProperty("olmoppl.mkl.avx512", "true")),
        "olmoppl.mkl.avx512=false");
    DjlSettings.configure();
    String choice = MklDispatch.select();
    assertTrue(choice.startsWith("AVX-512"), choice);
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
