package io.olmoppl.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import io.olmoppl.scoring.DeviceSetting;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link Devices#choose}: the engine device for a task from {@code --device}, the GPU addresses
 * Spark assigned to the task (its resource map), whether GPUs are requested per task, {@code
 * CUDA_VISIBLE_DEVICES} and the engine's CUDA device count. Synthetic inputs only: no GPU is
 * needed.
 */
class DevicesTest {
  private static final List<String> NONE = List.of();

  private static String fails(
      String mode, List<String> addresses, boolean requested, String cvd, int gpus) {
    return assertThrows(
            IllegalStateException.class,
            () -> Devices.choose(DeviceSetting.parse(mode), addresses, requested, cvd, gpus))
        .getMessage();
  }

  @Test
  void cpuModeIsCpuWhateverSparkAssigned() {
    assertEquals(Device.cpu(), Devices.choose(DeviceSetting.CPU, NONE, false, null, 0));
    assertEquals(Device.cpu(), Devices.choose(DeviceSetting.CPU, List.of("3"), true, "2,3", 4));
  }

  @Test
  void gpuModeWithoutEngineGpusFailsWithTheFix() {
    String m = fails("gpu", NONE, false, null, 0);
    assertTrue(
        m.contains("device gpu") && m.contains("-Pcuda") && m.contains("PYTORCH_LIBRARY_PATH"), m);
    // also when Spark did assign a GPU: the engine (CPU natives) cannot use it
    m = fails("gpu", List.of("0"), true, null, 0);
    assertTrue(m.contains("-Pcuda") && m.contains("PYTORCH_LIBRARY_PATH"), m);
  }

  @Test
  void autoWithoutEngineGpusIsCpu() {
    assertEquals(Device.cpu(), Devices.choose(DeviceSetting.AUTO, NONE, false, null, 0));
    assertEquals(Device.cpu(), Devices.choose(DeviceSetting.AUTO, NONE, true, null, 0));
    assertEquals(
        Device.cpu(),
        Devices.choose(DeviceSetting.AUTO, List.of("1"), true, "0,1", 0),
        "assigned GPU, CPU natives");
  }

  @ParameterizedTest(
      name = "{0}: address {1}, CUDA_VISIBLE_DEVICES={2}, {3} engine GPUs -> gpu({4})")
  @CsvSource(
      delimiter = '|',
      nullValues = "null",
      value = {
        "auto | 3 | 2,3     | 2 | 1", // physical GPU 3 is the second visible device
        "gpu  | 3 | 2,3     | 2 | 1",
        "auto | 2 | 2,3     | 2 | 0",
        "auto | 3 | ' 2, 3 '| 2 | 1", // spaces around ids are ignored
        "auto | 1 | null    | 2 | 1", // no CUDA_VISIBLE_DEVICES: the address is the CUDA index
        "gpu  | 1 | null    | 4 | 1",
        "auto | 1 | ''      | 2 | 1", // blank CUDA_VISIBLE_DEVICES is treated as unset
        "auto | 0 | null    | 1 | 0",
      })
  void assignedAddressMapsToCudaIndex(String mode, String address, String cvd, int gpus, int want) {
    assertEquals(
        Device.gpu(want),
        Devices.choose(DeviceSetting.parse(mode), List.of(address), true, cvd, gpus));
  }

  @Test
  void firstAssignedAddressIsUsed() {
    assertEquals(
        Device.gpu(1), Devices.choose(DeviceSetting.AUTO, List.of("1", "0"), true, null, 2));
  }

  @Test
  void addressHiddenByCudaVisibleDevicesFailsNamingBoth() {
    String m = fails("auto", List.of("1"), true, "2,3", 2);
    assertTrue(m.contains("GPU 1") && m.contains("CUDA_VISIBLE_DEVICES=2,3"), m);
  }

  @Test
  void addressBeyondEngineCountFails() {
    String m = fails("auto", List.of("2"), true, null, 2);
    assertTrue(m.contains("GPU 2") && m.contains("only 2 device"), m);
    // via CUDA_VISIBLE_DEVICES: physical 7 is the 3rd visible device, but the engine sees 2
    m = fails("gpu", List.of("7"), true, "5,6,7", 2);
    assertTrue(
        m.contains("GPU 7") && m.contains("CUDA device 2") && m.contains("only 2 device"), m);
  }

  @Test
  void nonNumericAddressWithoutCudaVisibleDevicesFails() {
    String m = fails("auto", List.of("GPU-abc"), true, null, 2);
    assertTrue(m.contains("'GPU-abc'") && m.contains("not a CUDA device index"), m);
    // a UUID address is fine when CUDA_VISIBLE_DEVICES lists UUIDs
    assertEquals(
        Device.gpu(1),
        Devices.choose(DeviceSetting.AUTO, List.of("GPU-b"), true, "GPU-a,GPU-b", 2));
  }

  @Test
  void requestedButNoAddressFails() {
    String m = fails("auto", NONE, true, null, 2);
    assertTrue(m.contains("spark.task.resource.gpu.amount") && m.contains("assigned none"), m);
    m = fails("gpu", NONE, true, "0,1", 2);
    assertTrue(m.contains("spark.task.resource.gpu.amount"), m);
  }

  @Test
  void notRequestedNoAddressWithGpusIsDeviceZero() {
    assertEquals(Device.gpu(0), Devices.choose(DeviceSetting.AUTO, NONE, false, null, 2));
    assertEquals(Device.gpu(0), Devices.choose(DeviceSetting.GPU, NONE, false, null, 1));
    assertEquals(Device.gpu(0), Devices.choose(DeviceSetting.AUTO, NONE, false, "3", 1));
  }
}
