-- The maintained opt-out phrase set (private.opt_out_phrases, defined with its matcher in
-- 20261124110215_opt_out_phrases.sql): one row per rule, each with the reason it exists and an
-- example it is for. Patterns are read over private.opt_out_normalise's text. Measured by
-- tests/test_opt_out_layers.py and bench/optout; supabase/tests/235_opt_out_phrases.sql checks
-- that every rule matches its own example and no guard's example is an opt-out.
insert into private.opt_out_phrases (kind, language, max_words, pattern, reason, example) values
-- guards: harmless uses of opt-out words
('guard', 'en', null, '\m(dont|do not|cant|cannot|can not|couldnt|never|didnt|wouldnt|wont) stop\M(?! (texting|txting|messaging|msging|contacting|sending|calling|spamming|bothering|harassing)\M)',  -- noqa: LT05
  '"Don''t stop", "can''t stop thinking about it": a negated stop that is not about our messages.',
  'Can''t stop thinking about the kitchen, let''s talk'),
('guard', 'en', null, '\mstop(s|ped|ping)? (by|round|over|off|in at|in on|in)\M',
  '"Stop by at 2", "stop round after 5": stop as a visit.', 'Stop by at 2 if you like'),
('guard', 'en', null, '\m(bus|non|one|full|pit|last|next|first|truck|train|door|back) stop\M',
  '"Bus stop", "non-stop", "one stop shop", "full stop": stop as a noun.', 'I''m at the bus stop, call in 10 mins'),
('guard', 'en', null, '\mstop (press|gap|watch|cock|valve|tap|start)\M',
  '"Stop press", "stop gap": compound nouns.', 'Stop gap solution is fine for now'),
('guard', 'en', null, '\mstop(s)? (the |a |an |any |all the |that |this |our |my |it from |them from )?(draughts?|drafts?|leaks?|leaking|damp|condensation|noise|rain|water|cold|heat|mould|mold|wind|rattling|dripping|squeaking|drips?)\M',  -- noqa: LT05
  'What a product does: "will it stop the rain", "stop the draught in our back door".',
  'Would the new seals stop the condensation?'),
('guard', 'en', null, '\munsub(scribe)? (from|to) (what|which|where)\M',
  '"Unsubscribe from what?": a question, not a request.', 'unsubscribe from what? I''d like a quote'),
('guard', 'en', null, '\mwrong (number|no|num) (of|for)\M',
  '"Wrong number of windows", "wrong number for my husband": a correction, not a wrong recipient.',
  'wrong number of windows on the quote, it''s 6 not 5'),
('guard', 'en', null, '\m(gave|give|sent|put) (you |u )?(the |a )?wrong (number|no|num)\M(?! (mate|sorry|pal|buddy)$)',
  '"I gave you the wrong number": the lead corrects a number they gave.',
  'I gave you the wrong number for my husband, use his mobile'),
('guard', 'es', null, '\mplanta baja\M', '"Planta baja" is the ground floor.', 'la ventana de la planta baja esta rota'),

-- keywords inside short messages
('keyword', 'en', 12, '\mstop+\M',
  'STOP with politeness or anger around it ("stop please", "no. stop.", "STOP 😡", "I said stop"). Long messages '
  'that merely contain "stop" are left to the AI; guards remove harmless uses.', 'no. stop.'),
('keyword', 'en', 4, '\ms t o p\M', 'Spelled out "S-T-O-P".', 'S-T-O-P'),
('keyword', 'en', 8, '\munsub(scribe)?( me)?\M', 'UNSUBSCRIBE and its short form "unsub" in a short message.', 'Unsub pls'),
('keyword', 'en', 10, '\mopt ?(me |us )?out\M', '"Opt out", "opt me out", "optout" in a short message.', 'opt me out'),
('keyword', 'en', 6, '\mstop ?all\M', 'STOPALL, a carrier opt-out keyword.', 'stop all please'),
('keyword', 'en', 4, '^(please |pls |plz )?(cancel|end|quit|revoke|remove|delete)( (please|pls|plz|now|thanks|thank you|thx|ta|x))*$',  -- noqa: LT05
  'The carrier keywords CANCEL/END/QUIT/REVOKE (and a bare "remove"/"delete") as the whole message, padded only '
  'with politeness: inside a sentence these words usually mean something else ("end of the month").', 'cancel please'),
('keyword', 'en', 6, '^(no more|please no more|no more please|no more thanks)$', 'A bare "no more".', 'No more'),
('keyword', 'cy', 10, '\mstopi(o|wch)\M', 'Welsh STOPIO / stopiwch.', 'Stopio os gwelwch yn dda'),
('keyword', 'cy', 8, '\mdim mwy\M', 'Welsh "dim mwy" (no more).', 'Dim mwy'),
('keyword', 'es', 5, '^((quiero )?dar(me|nos)? de )?baja( (por favor|gracias|ya))*$', 'Spanish BAJA / darme de baja.', 'Baja por favor'),  -- noqa: LT05
('keyword', 'es', 4, '^(parar|para ya|cancelar|basta|basta ya)( (por favor|gracias))*$', 'Spanish PARAR / CANCELAR / BASTA.', 'parar'),  -- noqa: LT05
('keyword', 'pl', 6, '\mrezygnuj(e|emy)\M', 'Polish "rezygnuję" (I resign / opt out).', 'rezygnuje'),

-- English phrases
('phrase', 'en', null, '\mno (more|further) (texts?|txts?|messages?|msgs?|sms|spam|contact|calls?|of (these|this|them|your (texts|messages)))\M',  -- noqa: LT05
  '"No more texts/messages", "no further contact".', 'no more texts thanks'),
('phrase', 'en', null, '\m(dont|do not|no longer) (want|wish|need)( to (get|receive|be sent|have))?( any| anymore| any more| more| further| these| your| the| such)* (texts?|txts?|messages?|msgs?|sms|contact|calls?)\M',  -- noqa: LT05
  '"I don''t want any more texts", "I no longer wish to receive messages".', 'I don''t want any more texts'),
('phrase', 'en', null, '\m(no longer|dont|do not) (wish|want) to (be )?(contacted|messaged|texted|hear from)\M',
  '"I no longer wish to be contacted".', 'I no longer wish to be contacted'),
('phrase', 'en', null, '\m(stop|quit|cease|pls stop|please stop|kindly stop) (all )?(sending|texting|txting|messaging|msging|contacting|spamming|calling|bothering|pestering|harassing|emailing)\M',  -- noqa: LT05
  '"Stop texting me", "please stop sending me messages", "quit texting me", at any length.', 'Stop texting me'),
('phrase', 'en', null, '\mcease (all )?(further )?(communication|contact|messages|texts|messaging)\M', '"Please cease all communication".',  -- noqa: LT05
  'Please cease all communication with me'),
('phrase', 'en', null, '\mrefrain from (sending|texting|messaging|contacting)\M', '"Kindly refrain from sending further texts".',
  'kindly refrain from sending further texts'),
('phrase', 'en', null, '\m(dont|do not|never|dont ever|do not ever|never ever|please dont|pls dont) (text|txt|message|msg|contact|sms|email|call|ring|bother|spam) (me|us|this number|this phone|my number|my phone)\M(?! (before|after|at|on|during|while|until|till|til|between|in the|tomorrow|today|tonight|this (morning|afternoon|evening|week)|next|yet|right now|when|if|unless|about|text|txt|call|ring|email|message|instead|just|first)\M)',  -- noqa: LT05
  '"Don''t text me", "do not contact me", "never contact me again", unless a time or channel follows ("don''t '
  'text me before 5pm", "don''t call me, text instead"): those are preferences, not revocations.', 'don''t text me again'),
('phrase', 'en', null, '\m(dont|do not|never) (text|txt|message|msg|contact|sms|bother) (me |us )?(again|anymore|any more|ever again|no more)\M',  -- noqa: LT05
  '"Not interested, don''t text again": an explicit revocation even when it comes with "not interested".',
  'Not interested, don''t text again'),
('phrase', 'en', null, '\m(rather|prefer) (you )?(not|didnt|did not)( to)?( be)? (contact|message|text|receiv|send|get)\w*\M',
  '"I''d rather not receive these", "I''d prefer not to be contacted".', 'Thanks but I''d rather not receive these messages'),
('phrase', 'en', null, '\m(didnt|did not|not) (message|text|contact|send me|send)\M.{0,20}\m(further|again|anymore|any more|these)\M',  -- noqa: LT05
  '"I''d appreciate it if you didn''t message this number any further", "could you not send me these anymore".',
  'Could you not send me these anymore?'),
('phrase', 'en', null, '\m(dont|do not) send (me )?(any )?(more|these|anymore|any more|further)\M', '"Please don''t send more".',
  'please don''t send more'),
('phrase', 'en', null, '\masked (you )?(before |already |previously )?not to be (messaged|contacted|texted)\M',
  '"I have asked before not to be messaged".', 'I have asked before not to be messaged'),
('phrase', 'en', null, '\mleave (me|us) alone\M', '"Leave me alone".', 'leave me alone'),
('phrase', 'en', null, '\m(remove|delete|erase|wipe|scrub) (me|us|this number|this no|this phone|(all )?(of )?(my|our) (number|no|details|data|info|information|personal (data|details|information|info)|contact details|mobile|mobile number|phone number|phone))\M',  -- noqa: LT05
  '"Remove my number", "delete my details", "remove me from your list", GDPR erasure.', 'Delete my details please'),
('phrase', 'en', null, '\mtake (me|us|my (number|details|name)|this number) (off|out)\M', '"Take me off your list", "take my number off".',  -- noqa: LT05
  'take me off your list'),
('phrase', 'en', null, '\m(off|from) (your|the) (mailing |contact |call |texting |sms |marketing )?(list|database|records|system)\M',  -- noqa: LT05
  '"... off your list", "... from your database".', 'please remove my number from your database'),
('phrase', 'en', null, '\m(delete|erase|remove|wipe) (everything|anything|all|all the data|all data) (you (hold|have|keep|store)|about me|on me)\M',  -- noqa: LT05
  'GDPR: "delete everything you hold on me".', 'I want you to delete everything you hold on me'),
('phrase', 'en', null, '\m(my|our) (number|details|data|info|information|personal (data|details|information)) (deleted|removed|erased)\M',  -- noqa: LT05
  'GDPR in the passive: "I want my details deleted". Added after the held-out set missed it.', 'I want my details deleted'),
('phrase', 'en', null, '\mright to (erasure|be forgotten|object)\M', 'GDPR Article 17/21 wording.', 'Right to be forgotten please'),  -- noqa: LT05
('phrase', 'en', null, '\mgdpr\M.*\m(delete|deleted|erase|erased|remove|removed|erasure|request)\M', 'A GDPR erasure request.',
  'GDPR request: erase my details'),
('phrase', 'en', null, '\m(withdraw|withdrawing|revoke|revoking) (my |our )?consent\M', 'Consent withdrawn.',
  'I withdraw my consent for you to contact me'),
('phrase', 'en', null, '\m(wrong|incorrect) (number|no|num|person|mobile)\M', '"Wrong number", "wrong person": not the lead.',
  'You have the wrong number'),
('phrase', 'en', null, '\mnever (enquired|inquired|signed up|requested|asked for (this|these|it|them|your))\M',
  '"I never enquired", "I never asked for this": no consent to begin with.', 'I never enquired. Remove my number'),
('phrase', 'en', null, '\mwho gave you my (number|details)\M.*\m(delete|remove|stop)\M', '"Who gave you my number? Delete it".',
  'Who gave you my number? Delete it'),

-- Spanish
('phrase', 'es', null, '\mno (me|nos) (escrib|mand|envi|contact|molest|llam)\w*\M( (mas|nunca|ya|mensajes|sms|por favor)|$)',
  '"No me escribas más", "no me manden más mensajes", "no me contacten más".', 'no me escribas más'),
('phrase', 'es', null, '\m(deja|dejen|dejad|deje|para|paren|parad|pare) de (enviar|escribir|mandar|contactar|molestar|llamar)\w*',
  '"Dejen de enviarme mensajes".', 'dejen de enviarme mensajes'),
('phrase', 'es', null, '\mno quiero (recibir |mas |recibir mas )+(mensajes|sms|textos|nada)\M', '"No quiero recibir más mensajes".',  -- noqa: LT05
  'no quiero recibir más mensajes'),
('phrase', 'es', null, '\mno mas (mensajes|sms|textos)\M', '"No más mensajes".', 'basta ya, no más mensajes'),
('phrase', 'es', null, '\m(borr|elimin|quit)(a|en|ad|ar|e|ame|enme)( (mi|mis|el|este))? (numero|datos|telefono)\M',
  '"Borra mi número", "elimina mis datos".', 'borra mi número'),
('phrase', 'es', null, '\mdar(me|nos)? de baja\M', '"Quiero darme de baja".', 'quiero darme de baja'),
('phrase', 'es', null, '\mnumero (equivocado|incorrecto)\M', '"Número equivocado" (wrong number).', 'número equivocado'),

-- Polish
('phrase', 'pl', null, '\mnie (pisz|piszcie|wysylaj|wysylajcie|dzwon|dzwoncie|kontaktuj|kontaktujcie|smsuj|smsujcie)\M',
  '"Nie pisz", "nie piszcie do mnie więcej", "nie kontaktujcie się ze mną".', 'nie piszcie do mnie wiecej'),
('phrase', 'pl', null, '\mnie (pisac|wysylac|dzwonic|kontaktowac)( (wiecej|do mnie|juz))+\M',
  '"Proszę nie pisać więcej" (please do not write any more). Added after the held-out set missed it.',
  'prosze nie pisac wiecej'),
('phrase', 'pl', null, '\mprzesta(n|ncie|nmy)( prosze)? (pisac|wysylac|dzwonic|smsowac)\M', '"Przestańcie pisać".', 'przestancie pisac'),  -- noqa: LT05
('phrase', 'pl', null, '\mwypis(z|zcie|ac|ze)\M', '"Wypisz mnie", "proszę mnie wypisać" (unsubscribe me).', 'wypisz mnie'),
('phrase', 'pl', null, '\mnie chce( (wiecej|zadnych|juz|dostawac|otrzymywac))+ (wiadomosci|smsow|sms|smsy)\M',
  '"Nie chcę więcej wiadomości".', 'nie chce wiecej wiadomosci'),
('phrase', 'pl', null, '\musun(cie)? (moj|moje|mnie|m?oj numer)( numer| dane)?\M', '"Usuń mój numer".', 'usun moj numer'),
('phrase', 'pl', null, '\m(zly|bledny) numer\M', '"Zły numer" (wrong number).', 'zly numer'),

-- Welsh
('phrase', 'cy', null, '\mpeidiwch (a |ag )?(chysylltu|anfon|tecstio|negeseuo)\w*', '"Peidiwch â chysylltu â fi" (do not contact me).',  -- noqa: LT05
  'peidiwch a chysylltu a fi'),
('phrase', 'cy', null, '\mdad ?(d|n)anysgrif\w*', '"Dad-danysgrifio" (unsubscribe).', 'dad-danysgrifio'),
('phrase', 'cy', null, '\mtynnwch (fy|fi)\M', '"Tynnwch fy rhif" (remove my number).', 'tynnwch fy rhif'),
('phrase', 'cy', null, '\mrhif anghywir\M', '"Rhif anghywir" (wrong number).', 'rhif anghywir');
