import { BertTokenizer, parseVocabTxt } from '../src/tokenizer/tokenizer';
import { readFileSync } from 'node:fs';
const tok = BertTokenizer.fromVocab(parseVocabTxt(readFileSync('/work/shared/data/vocab/bert-base-uncased-vocab.txt','utf8')));
console.log(tok.encode('hello world'), tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId, tok.vocabSize);
console.log(tok.tokenize('Héllo unaffable 𠀀x 你好 ΣΑΣ a\u0378b'));
console.log(tok.encode('a b c d e f g h', 'i j k', {maxLength: 8}));
console.log(tok.encodeBatch(['hello', 'hello world again'], null, {padding:'longest'}));
console.log(tok.decode(tok.encode("Hello, world! It's unaffable.").inputIds, {skipSpecial: true}));
