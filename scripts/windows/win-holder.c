// Holds a file the way other Windows processes do, for the tests of what the store does then:
//   win-holder lock <file>   the store lock's byte range through LockFileEx, as another staging
//                            process (or a frozen one) holds it
//   win-holder open <file>   the file open without FILE_SHARE_DELETE, as a virus scanner or the
//                            search indexer holds a file it reads
// It prints "held" once it holds, and lets go when its stdin closes (the test ends it, or the test
// process died) or after two minutes, so that no run leaves a holder behind.
#include <windows.h>
#include <stdio.h>

static DWORD WINAPI watchdog(LPVOID unused) {
  (void)unused;
  // Longer than any test holds, short enough that a leaked holder does not outlive the run.
  Sleep(120000);
  ExitProcess(3);
  return 0;
}

int wmain(int argc, wchar_t **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: win-holder lock|open <file>\n");
    return 2;
  }
  HANDLE h;
  if (wcscmp(argv[1], L"lock") == 0) {
    h = CreateFileW(argv[2], GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                    OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
      fprintf(stderr, "win-holder: open failed: %lu\n", GetLastError());
      return 1;
    }
    // Byte 0, exclusive: the range the store's own lock takes, so each excludes the other.
    OVERLAPPED at = {0};
    if (!LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &at)) {
      fprintf(stderr, "win-holder: LockFileEx failed: %lu\n", GetLastError());
      return 1;
    }
  } else if (wcscmp(argv[1], L"open") == 0) {
    h = CreateFileW(argv[2], GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING,
                    FILE_FLAG_BACKUP_SEMANTICS, NULL);
    if (h == INVALID_HANDLE_VALUE) {
      fprintf(stderr, "win-holder: open failed: %lu\n", GetLastError());
      return 1;
    }
  } else {
    fprintf(stderr, "win-holder: unknown mode\n");
    return 2;
  }
  CreateThread(NULL, 0, watchdog, NULL, 0, NULL);
  printf("held\n");
  fflush(stdout);
  char buf[64];
  DWORD n;
  HANDLE in = GetStdHandle(STD_INPUT_HANDLE);
  while (ReadFile(in, buf, sizeof buf, &n, NULL) && n > 0) {
  }
  CloseHandle(h);
  return 0;
}
