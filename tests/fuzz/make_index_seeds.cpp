// Writes the serialized index of each htpasswd file named on the command
// line into OUT_DIR, under the same name: the seeds of fuzz_index_validation,
// valid indexes that let mutations start past the header checks.
//   make_index_seeds OUT_DIR FILE...

#include "auth_proxy/store/htpasswd_index.hpp"

#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

int main(int argc, char **argv)
{
    if (argc < 3) {
        std::cerr << "usage: " << argv[0] << " OUT_DIR FILE...\n";
        return 2;
    }
    for (int i = 2; i < argc; ++i) {
        const std::string path = argv[i];
        std::ifstream in(path, std::ios::binary);
        const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (!in) {
            std::cerr << "cannot read " << path << "\n";
            return 1;
        }
        // A fixed source signature keeps the seeds the same from one run to the next.
        const auth_proxy::HtpasswdIndex index(content, nullptr, auth_proxy::FileSignature{1, 2, 3, 4, 5});
        const std::string out_path = std::string(argv[1]) + "/" + path.substr(path.rfind('/') + 1);
        std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
        out.write(index.serialized().data(), static_cast<std::streamsize>(index.serialized().size()));
        if (!out) {
            std::cerr << "cannot write " << out_path << "\n";
            return 1;
        }
    }
    return 0;
}
