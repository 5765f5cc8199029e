// A stand-in for Windows' bcryptprimitives.dll, which Wine 8 lacks: Rust's std (1.78 and later)
// imports ProcessPrng from it, so without it no Rust-built DLL loads under Wine. It forwards to
// advapi32's RtlGenRandom (SystemFunction036), which Wine has. For the Wine test run only; real
// Windows has its own, and nothing here ships.
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  // RtlGenRandom takes a 32-bit length; ProcessPrng a pointer-sized one.
  while (len > 0) {
    ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
    if (!SystemFunction036(data, n)) return FALSE;
    data += n;
    len -= n;
  }
  return TRUE;
}
