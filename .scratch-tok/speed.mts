import { Tokenizer } from '@huggingface/tokenizers';
import { readFileSync } from 'node:fs';
const vocab = readFileSync('/work/shared/data/vocab/bert-base-uncased-vocab.txt','utf8').split('\n'); if (vocab.at(-1)==='') vocab.pop();
const v: Record<string,number> = {}; vocab.forEach((t,i)=>v[t]=i);
const specials=['[PAD]','[UNK]','[CLS]','[SEP]','[MASK]'];
const json = { version:'1.0', truncation:null, padding:null,
 added_tokens: specials.map(s=>({id:v[s],content:s,single_word:false,lstrip:false,rstrip:false,normalized:false,special:true})),
 normalizer:{type:'BertNormalizer',clean_text:true,handle_chinese_chars:true,strip_accents:null,lowercase:true},
 pre_tokenizer:{type:'BertPreTokenizer'},
 post_processor:{type:'TemplateProcessing',single:[{SpecialToken:{id:'[CLS]',type_id:0}},{Sequence:{id:'A',type_id:0}},{SpecialToken:{id:'[SEP]',type_id:0}}],pair:[{SpecialToken:{id:'[CLS]',type_id:0}},{Sequence:{id:'A',type_id:0}},{SpecialToken:{id:'[SEP]',type_id:0}},{Sequence:{id:'B',type_id:1}},{SpecialToken:{id:'[SEP]',type_id:1}}],special_tokens:{}},
 decoder:{type:'WordPiece',prefix:'##',cleanup:true},
 model:{type:'WordPiece',unk_token:'[UNK]',continuing_subword_prefix:'##',max_input_chars_per_word:100,vocab:v}};
const tok = new Tokenizer(json, {});
console.log(tok.encode('hello world', {return_token_type_ids:true}));
console.log(tok.encode('Héllo unaffable [MASK] 你好 a\u0000b', {text_pair: 'second one', return_token_type_ids:true}));
const lines = readFileSync('/work/shared/data/datasets/imdb/train.jsonl','utf8').split('\n').filter(Boolean).slice(0,3000).map(l=>JSON.parse(l).text);
let t=Date.now(); let n=0; for (const l of lines) n+=tok.encode(l).ids.length; const dt=(Date.now()-t)/1000; console.log(n, dt, n/dt,'tok/s');
