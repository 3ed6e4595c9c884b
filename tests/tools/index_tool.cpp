// index_tool: writes the index file an htpasswd file would get, for tests
// that play an attacker forging one.
//
//   index_tool forge <htpasswd text> <claimed user file> <out.idx>
//
// The index holds the users of <htpasswd text> but records the file version
// (device, inode, size, times) of <claimed user file>, as a forged index
// planted for that file would: anyone who can stat the user file can do this.

#include "auth_proxy/store/htpasswd_index.hpp"
#include "auth_proxy/store/user_file.hpp"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

int main(int argc, char **argv)
{
    if (argc != 5 || std::string(argv[1]) != "forge") {
        std::fprintf(stderr, "usage: %s forge <htpasswd text> <claimed user file> <out.idx>\n", argv[0]);
        return 2;
    }
    std::ifstream in(argv[2], std::ios::binary);
    const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auth_proxy::FileSignature claimed;
    if (auth_proxy::stat_signature(argv[3], claimed) != 0) {
        std::perror(argv[3]);
        return 1;
    }
    const auth_proxy::HtpasswdIndex index(content, nullptr, claimed);
    std::ofstream out(argv[4], std::ios::binary | std::ios::trunc);
    const std::string_view bytes = index.serialized();
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return out ? 0 : 1;
}
