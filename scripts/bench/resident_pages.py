#!/usr/bin/env python3
"""Benchmark helper, not a test: where a process's resident memory is, by mapping, and for its
own executable by ELF section and by the Swift module (or C library) whose code or data the
resident pages hold. Needs root (/proc/PID/pagemap) and an executable with its symbol table (a
plain `swift build -c release`, or `make release` without --strip-all).

  resident_pages.py PID EXECUTABLE [TOP]

A page is attributed to the module owning most of the symbols that start in it. File-backed
pages count whether the process touched them or the kernel mapped them around a fault (it maps
up to 16 neighbouring pages already in the page cache), so scattered code costs more than its size.
"""
import bisect, collections, re, struct, subprocess, sys

PAGE = 4096


def mappings(pid):
    for line in open(f"/proc/{pid}/maps"):
        p = line.split()
        start, end = (int(x, 16) for x in p[0].split("-"))
        yield start, end, p[5] if len(p) > 5 else "[anon]"


def present_pages(pid, start, end):
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(start // PAGE * 8)
        data = f.read((end - start) // PAGE * 8)
    return [start + i * PAGE for i in range(len(data) // 8) if struct.unpack_from("<Q", data, i * 8)[0] >> 63]


def sections(executable):
    out = subprocess.run(["readelf", "-SW", executable], capture_output=True, text=True, check=True).stdout
    found = []
    for m in re.finditer(r"\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", out):
        if int(m.group(2), 16):
            found.append((int(m.group(2), 16), int(m.group(3), 16), m.group(1)))
    return sorted(found)


def module(symbol):
    m = re.match(r"_?\$s(\d+)", symbol)
    if m:
        return symbol[m.end():m.end() + int(m.group(1))]
    if symbol.startswith("$s") or symbol.startswith("_swift") or symbol.startswith("swift"):
        return "Swift (standard library, runtime)"
    if symbol.startswith("_Z"):
        return "(C++)"
    return "(C) " + re.split(r"[_.$]", symbol.lstrip("_"))[0][:16]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    pid, executable = sys.argv[1], sys.argv[2]
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    by_mapping = collections.Counter()
    own = []
    for start, end, name in mappings(pid):
        pages = present_pages(pid, start, end)
        by_mapping[name] += len(pages) * 4
        if name.endswith("/" + executable.rsplit("/", 1)[-1]):
            own += pages
    print("resident KiB by mapping:")
    for name, kib in by_mapping.most_common(top):
        print(f"  {kib:8d}  {name}")
    secs = sections(executable)
    by_section = collections.Counter()
    for p in own:
        hit = next((name for a, size, name in secs if a < p + PAGE and p < a + size), "?")
        by_section[hit] += 4
    print(f"the executable's {len(own) * 4} resident KiB by section:")
    for name, kib in by_section.most_common(top):
        print(f"  {kib:8d}  {name}")
    nm = subprocess.run(["nm", "-n", "--defined-only", executable], capture_output=True, text=True, check=True).stdout
    syms = [(int(a, 16), s) for a, _, s in (line.split() for line in nm.splitlines() if len(line.split()) == 3)]
    addrs = [a for a, _ in syms]
    by_module = collections.Counter()
    for p in own:
        i = max(bisect.bisect_right(addrs, p) - 1, 0)
        j = max(bisect.bisect_left(addrs, p + PAGE), i + 1)
        owners = collections.Counter(module(s) for _, s in syms[i:j])
        by_module[owners.most_common(1)[0][0] if owners else "?"] += 4
    print("... by module:")
    for name, kib in by_module.most_common(top):
        print(f"  {kib:8d}  {name}")
    if len(sys.argv) > 4:  # a module's resident symbols, e.g. "(C++)"
        names = collections.Counter()
        for p in own:
            i = max(bisect.bisect_right(addrs, p) - 1, 0)
            j = max(bisect.bisect_left(addrs, p + PAGE), i + 1)
            for _, s in syms[i:j]:
                if module(s) == sys.argv[4]:
                    names[re.sub(r"\d+", "", s)[:60]] += 1
        for name, n in names.most_common(40):
            print(f"  {n:6d}  {name}")


if __name__ == "__main__":
    main()
