#!/usr/bin/env bash
# Rewrites the seed corpora under tests/fuzz/corpus/. Hashes come from the
# real htpasswd tool, at its smallest costs so that the fuzzers stay fast;
# the index seeds are serialized indexes of the htpasswd seeds, written by
# make_index_seeds from a fuzz build. Run it by hand after a format change
# and commit the result (htpasswd salts are random: every run differs).
#   scripts/fuzz 0                         # builds build-fuzz (and runs nothing)
#   tests/fuzz/make_seeds.sh build-fuzz
set -euo pipefail
build=$(cd "${1:?usage: $0 BUILD_DIR (a build with -DAUTH_PROXY_FUZZ=ON)}" && pwd)
cd "$(dirname "$0")"
corpus=corpus

for target in fuzz_basic_credentials fuzz_htpasswd_index fuzz_index_validation fuzz_classify_hash fuzz_challenge; do
    rm -rf "${corpus:?}/$target"
    mkdir -p "$corpus/$target"
done

# One hash of every format htpasswd writes, each for the password "pw".
hash() { htpasswd -nb "$@" | cut -d: -f2-; }
apr1=$(hash -m u pw)
bcrypt=$(hash -B -C 4 u pw)
sha1=$(hash -s u pw)
des=$(hash -d u pw)
sha256=$(hash -2 -r 1000 u pw)
sha512=$(hash -5 -r 1000 u pw)
sha256_default=$(hash -2 u pw)
md5crypt=$(openssl passwd -1 -salt saltsalt pw)

# fuzz_classify_hash: "<hash>\0<password>", and shapes next to the real ones.
c=$corpus/fuzz_classify_hash
n=0
for h in "$apr1" "$bcrypt" "$sha1" "$des" "$sha256" "$sha512" "$sha256_default" "$md5crypt" \
         "${bcrypt/\$2y\$/\$2b\$}" "${bcrypt/\$2y\$/\$2a\$}" "plaintext" "\$apr1\$\$" "{SHA}="; do
    n=$((n + 1))
    printf '%s\0pw' "$h" > "$c/hash-$n"
done
printf '%s\0wrong' "$apr1" > "$c/wrong-password"

# fuzz_htpasswd_index: whole files, one line rule each.
i=$corpus/fuzz_htpasswd_index
printf 'alice:%s\nbob:%s\ncarol:%s\ndave:%s\nerin:%s\nfrank:%s\ngrace:%s\n' \
    "$apr1" "$bcrypt" "$sha1" "$des" "$sha256" "$sha512" "$md5crypt" > "$i/every-format"
printf '# users\n\nalice:%s\n   # indented comment\n\t\nbob:%s\n' "$apr1" "$sha1" > "$i/comments-and-blanks"
printf 'alice:%s\r\nbob:%s\r\n\r\n' "$apr1" "$sha1" > "$i/crlf"
printf '  alice:%s  \n\tbob:%s\t\r\n' "$apr1" "$sha1" > "$i/surrounding-space"
printf 'alice:%s\nbob:%s\nalice:%s\n' "$apr1" "$sha1" "$bcrypt" > "$i/duplicate"
printf 'alice:%s:Alice Example:admin\nbob:%s:\n' "$apr1" "$sha1" > "$i/extra-fields"
printf 'alice:%s\njust-a-name\n:%s\n' "$apr1" "$sha1" > "$i/refused-lines"
printf 'carol:secret\ndave:\nalice:%s\n' "$apr1" > "$i/unknown-hash"
printf 'alice:%s\nbob:%s' "$apr1" "$sha1" > "$i/no-final-newline"
printf 'j\xc3\xbcrgen:%s\n\xe7\x8e\x8b:%s\n' "$sha1" "$des" > "$i/utf8-users"
printf 'alice smith:%s\nbob\tjones:%s\n' "$apr1" "$sha1" > "$i/space-in-user"
printf 'alice:%s\nbob:%s\n' "$apr1" "$apr1" > "$i/same-hash"
: > "$i/empty"
for k in $(seq 1 40); do printf 'user%d:%s\n' "$k" "$sha1"; done > "$i/forty-users"

# fuzz_index_validation: the same files, as the indexes built from them.
"$build/tests/fuzz/make_index_seeds" "$corpus/fuzz_index_validation" "$i"/*

# fuzz_basic_credentials: header values.
b=$corpus/fuzz_basic_credentials
printf 'Basic dXNlcjpwdw==' > "$b/user-pw"                 # user:pw
printf 'basic   dXNlcjpwdw==  ' > "$b/lowercase-blanks"
printf '\tBASIC\tYWxpY2U6' > "$b/empty-password"           # alice:
printf 'Basic OnB3' > "$b/empty-user"                      # :pw
printf 'Basic dXNlcg==' > "$b/no-colon"                    # user
printf 'Basic dXNlcjpwOnc=' > "$b/colon-in-password"       # user:p:w
printf 'Basic dQB4OnB3' > "$b/nul-in-user"                 # u\0x:pw
printf 'Basic dXNlcjpwCXc=' > "$b/tab-in-password"         # user:p\tw
printf 'Basic w7w6w7w=' > "$b/utf8"                        # ü:ü
printf 'Basic dXNlcjpwdw=' > "$b/bad-padding"
printf 'Basic dXNlcjpwdx==' > "$b/nonzero-trailing-bits"
printf 'Basic' > "$b/no-token"
printf 'Bearer dXNlcjpwdw==' > "$b/other-scheme"
printf 'Basic %s' "$(head -c 3072 /dev/zero | tr '\0' 'a' | sed 's/^a/u:/' | head -c 3072 | base64 -w0)" > "$b/longest"

# fuzz_challenge: realms, as typed into AuthName.
r=$corpus/fuzz_challenge
printf 'Login Authentication' > "$r/plain"
printf '' > "$r/empty"
printf 'say "hi"' > "$r/quotes"
printf 'C:\\proxy' > "$r/backslash"
printf 'a\\"b' > "$r/escaped-quote"
printf '\\\\"' > "$r/backslashes-and-quote"
printf 'Z\xc3\xbcrich B\xc3\xbcro \xe2\x82\xac' > "$r/utf8"
printf 'a\r\nSet-Cookie: x=1' > "$r/crlf"
printf 'a\001b\037c\177d' > "$r/controls"
printf 'a\0b' > "$r/nul"
printf 'a\tb' > "$r/tab"
printf '\\' > "$r/trailing-backslash"
